"""The local image models in a worker process of their own, with a memory and time budget.

An image is attacker-controlled input, and the models are native code: a shape they handle
badly can take gigabytes or minutes. In the local runtime the webhook, the bus and every
handler share one process, so the models run in a child process instead:

- its address space is capped (RLIMIT_AS, MEMORY_LIMIT_BYTES): a runaway allocation fails
  there, or the kernel ends that process, never the webhook's;
- each image gets IMAGE_SECONDS of the worker's time across its capabilities; past that the
  worker is killed;
- a worker that dies (killed, out of memory, crashed) is started again on the next call, and
  the image it died on gets `ImageBudgetExceededError` (recorded in `Analysis.Errors`).

One worker process serves every image (its models load once, when it starts), LANES images
at a time: one thread and one pipe per lane. Two images side by side keep both cores busy
(one image's face detection runs while the other's text detection does), and sharing one
process keeps the models loaded once: a second worker process would have doubled the
models' memory. The memory-hungry text detection still runs one image at a time inside
the worker (local_image.OCR_LOCK).

Who is to blame when the worker dies with two images in it? Nobody can tell, so neither is
blamed yet: each is asked again, alone (holding every lane). An image is only charged with
a worker's death, or with running out of its memory, when it was the only one in the worker.
An image whose own time budget ran out is charged at once; the other image in the worker
when it was killed is asked again.

On AWS each Lambda invocation is already such a process, so the lite profile runs the
models in-process.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from chalicelib.analysis import local_image
from chalicelib.analysis.image_decode import InvalidImageError, decode_image
from chalicelib.analysis.local_image import IMAGE_SECONDS
from chalicelib.errors import InputError, UnavailableError

logger = logging.getLogger(__name__)

# The models' own peak with a 1600 px page is about 1.3 GB of address space with the malloc
# settings below (onnxruntime and BLAS reserve far more than they touch), and one image's
# faces and nudity beside it add little: 3 GiB leaves room for both lanes.
MEMORY_LIMIT_BYTES = 3 * 1024**3
# Starting a worker (interpreter, imports, three models) is not charged to any image.
START_SECONDS = 180.0
# glibc's malloc, tuned for a process whose largest allocations are a model's activations:
# - every thread that allocates under contention gets an arena of its own, and memory freed
#   in one arena is not reused by another: two arenas, not one per lane and model thread;
# - freed blocks above the mmap threshold go back to the system at once, but glibc raises
#   that threshold (up to 32 MB) each time such a block is freed, after which activations
#   stay in the heap. Fixed at 16 MiB: text detection's large tensors always return.
# The worker's high-water mark over 120 corpus photos: 796 MB untuned, 680 MB tuned, at the
# same speed (a 1 MiB threshold gave 532 MB but 12% fewer photos a second: page faults).
MALLOC_ARENAS = 2
MMAP_THRESHOLD_BYTES = 16 * 2**20
# Images in the worker at once: one per core of the 2-core reference machine. More lanes
# only queue inside the worker, and each adds one image's face and nudity activations.
LANES = 2


class ImageBudgetExceededError(InputError):
    """The image used up its memory or time budget; the worker that held it was replaced."""


class ModelFailedError(InputError):
    """A model raised on this image (in the worker); the message names the original error."""


class ModelWorkerUnavailableError(UnavailableError):
    """The worker process could not be started."""


class _AskAgainAlone(UnavailableError):
    """The worker died or ran out of memory with other images in it: not this image's fault
    yet. Internal to ModelWorker, which asks again with the image alone."""


@dataclass
class _Generation:
    """One started worker process and what happened to it."""

    number: int
    process: Any
    lanes: list[Any]  # the parent's end of each lane's pipe
    free: list[int]
    stopped_by: str | None = None  # why it was stopped, once it was
    deliberate: bool = False  # stopped by this side for one image: the others are innocent
    running: dict[int, bool] = field(default_factory=dict)  # call -> shared with another?


class ModelWorker:
    """Runs `local_image` models by name on image bytes in one reused child process, `lanes`
    images at a time."""

    def __init__(
        self,
        memory_limit: int = MEMORY_LIMIT_BYTES,
        start_seconds: float = START_SECONDS,
        lanes: int = LANES,
    ) -> None:
        self.memory_limit = memory_limit
        self.start_seconds = start_seconds
        self.lanes = lanes
        self._state = threading.Lock()  # guards _current and a generation's books
        self._starting = threading.Lock()  # one start at a time
        self._slots = threading.Semaphore(lanes)
        self._exclusive = threading.Lock()  # taken to gather every slot (asking alone)
        self._current: _Generation | None = None
        self._calls = itertools.count()
        self.starts = 0  # how many processes were started (tests and the log read it)

    @property
    def pid(self) -> int | None:
        current = self._current
        return current.process.pid if current is not None else None

    def run(self, name: str, image: bytes, timeout: float) -> tuple[Any, float]:
        """(`local_image.MODELS[name]` on the decoded `image`, seconds it took), within
        `timeout` seconds. Starting the worker is not counted."""
        if timeout <= 0:
            raise ImageBudgetExceededError(
                f"image used its {IMAGE_SECONDS:.0f} s budget before {name} could run"
            )
        digest = hashlib.sha256(image).hexdigest()
        try:
            with self._slot():
                return self._call(name, digest, image, timeout)
        except _AskAgainAlone:
            logger.info("asking the model worker again for %s, with no other image in it", name)
            with self._all_slots():
                return self._call(name, digest, image, timeout)

    def close(self) -> None:
        with self._state:
            current, self._current = self._current, None
        if current is not None:
            self._kill(current, "closed")

    # -- one call ------------------------------------------------------------------------

    def _call(self, name: str, digest: str, image: bytes, timeout: float) -> tuple[Any, float]:
        generation = self._ensure_started()
        call = next(self._calls)
        with self._state:
            lane = generation.free.pop()
            shared = bool(generation.running)
            for other in generation.running:
                generation.running[other] = True
            generation.running[call] = shared
        conn = generation.lanes[lane]
        started = time.perf_counter()
        try:
            conn.send((name, digest, image))
            if not conn.poll(timeout):
                self._kill(
                    generation, f"{name} still running after {timeout:.1f} s", deliberate=True
                )
                raise ImageBudgetExceededError(
                    f"{name} exceeded the image's time budget ({timeout:.1f} s left of "
                    f"{IMAGE_SECONDS:.0f} s); the model worker was restarted"
                )
            status, payload = conn.recv()
            seconds = time.perf_counter() - started
        except (EOFError, OSError) as exc:
            code = self._kill(generation, f"died during {name}")
            if generation.stopped_by == "closed":
                raise ModelWorkerUnavailableError("the model worker was closed") from exc
            if generation.deliberate:
                # Killed on purpose for another image (its budget, its failure): ask again.
                return self._call(name, digest, image, timeout)
            if self._was_shared(generation, call):
                raise _AskAgainAlone from exc
            raise ImageBudgetExceededError(
                f"the model worker died during {name} ({_describe_exit(code)}); it was restarted"
            ) from exc
        finally:
            with self._state:
                shared = generation.running.pop(call, False)
                generation.free.append(lane)
        if status == "ok":
            return payload, seconds
        return self._raise(generation, name, payload, shared)

    def _was_shared(self, generation: _Generation, call: int) -> bool:
        with self._state:
            return generation.running.get(call, False)

    def _raise(
        self, generation: _Generation, name: str, error: tuple[str, str], shared: bool
    ) -> Any:
        kind, message = error
        if kind == "InvalidImageError":
            raise InvalidImageError(message)
        # The models are native code: after one of them failed, its state is not to be
        # trusted (onnxruntime kept failing on every image after a bad_alloc), so the next
        # image gets a fresh worker.
        self._kill(generation, f"{name} raised {kind}", deliberate=True)
        if kind == "MemoryError" or "bad_alloc" in message:
            if shared:  # the address space was the two images': not this one's fault yet
                raise _AskAgainAlone
            raise ImageBudgetExceededError(
                f"{name} ran out of the worker's {self.memory_limit // 2**20} MiB memory "
                "budget; the model worker was restarted"
            )
        raise ModelFailedError(
            f"{name} failed in the model worker ({kind}: {message}); it was restarted"
        )

    # -- slots -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        with self._exclusive:  # behind anyone gathering every slot
            self._slots.acquire()
        try:
            yield
        finally:
            self._slots.release()

    @contextlib.contextmanager
    def _all_slots(self) -> Iterator[None]:
        with self._exclusive:
            for _ in range(self.lanes):
                self._slots.acquire()
        try:
            yield
        finally:
            for _ in range(self.lanes):
                self._slots.release()

    # -- the process -----------------------------------------------------------------------

    def _ensure_started(self) -> _Generation:
        with self._starting:
            current = self._current
            if current is not None and current.process.is_alive():
                return current
            if current is not None:
                self._kill(current, "found dead")
            generation = self._start()
            with self._state:
                self._current = generation
            return generation

    def _start(self) -> _Generation:
        import multiprocessing

        # spawn, not fork: the parent has threads (the web server, the bus workers) whose
        # locks a forked child would inherit held.
        context = multiprocessing.get_context("spawn")
        pipes = [context.Pipe() for _ in range(self.lanes)]
        process = context.Process(
            target=serve,
            args=([child for _, child in pipes], self.memory_limit),
            name="magpie-models",
            daemon=True,
        )
        process.start()
        for _, child in pipes:
            child.close()
        self.starts += 1
        ready = pipes[0][0]
        if not ready.poll(self.start_seconds):
            process.kill()
            process.join()
            raise ModelWorkerUnavailableError(
                f"the model worker did not start within {self.start_seconds:.0f} s"
            )
        try:
            ready.recv()  # "ready"
        except EOFError as exc:
            process.join()
            raise ModelWorkerUnavailableError(
                f"the model worker exited while starting ({_describe_exit(process.exitcode)})"
            ) from exc
        logger.info("model worker %d started with %d lanes", process.pid, self.lanes)
        return _Generation(
            number=self.starts,
            process=process,
            lanes=[parent for parent, _ in pipes],
            free=list(range(self.lanes)),
        )

    def _kill(self, generation: _Generation, why: str, deliberate: bool = False) -> int | None:
        """Stop `generation`'s process (once; later calls only wait for its exit code).
        `deliberate`: stopped for one image's sake while it was still working."""
        with self._state:
            first = generation.stopped_by is None
            if first:
                generation.stopped_by, generation.deliberate = why, deliberate
            if self._current is generation:
                self._current = None
        process = generation.process
        if first:
            if process.is_alive():
                process.kill()
            process.join(timeout=10)
            for conn in generation.lanes:
                conn.close()
            logger.warning("model worker %d stopped: %s", process.pid, why)
        else:
            process.join(timeout=10)
        return process.exitcode


@functools.cache
def shared_worker() -> ModelWorker:
    """The process's one worker (started on its first image, not here)."""
    return ModelWorker()


def _last_line(message: str) -> str:
    """The line that says what happened: some model errors carry a whole traceback."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return (lines[-1] if lines else "")[:300]


def _describe_exit(code: int | None) -> str:
    import signal

    if code is None:
        return "exit status unknown"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


# --- the child ----------------------------------------------------------------------------


def serve(conns: list[Any], memory_limit: int) -> None:
    """The worker: loads the models, then one thread per lane answers (name, digest, image)
    with ("ok", result) or ("error", (kind, message)) until the parent closes the lane."""
    import resource
    import signal

    # Ctrl-C reaches the whole process group; the parent decides when this process ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tune_malloc(MALLOC_ARENAS, MMAP_THRESHOLD_BYTES)
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    local_image.load_models()
    decoded = _DecodedImages(keep=len(conns))
    lanes = [
        threading.Thread(target=_serve_lane, args=(conn, decoded), name=f"lane-{index}")
        for index, conn in enumerate(conns)
    ]
    for lane in lanes:
        lane.start()
    conns[0].send(("ready", None))
    for lane in lanes:
        lane.join()


def tune_malloc(arenas: int, mmap_threshold: int) -> bool:
    """Cap glibc's malloc arenas and fix its mmap threshold for this process (call it before
    threads start); False where the C library is not glibc."""
    import ctypes

    m_mmap_threshold, m_arena_max = -3, -8  # from glibc's malloc.h
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    return mallopt(m_arena_max, arenas) == 1 and mallopt(m_mmap_threshold, mmap_threshold) == 1


class _DecodedImages:
    """The last few decoded images by digest: an image's capabilities arrive one by one, and
    the other lane's image may arrive in between."""

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._images: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str, image: bytes) -> Any:
        with self._lock:
            if digest in self._images:
                self._images.move_to_end(digest)
                return self._images[digest]
        rgb = decode_image(image)
        with self._lock:
            self._images[digest] = rgb
            while len(self._images) > self._keep:
                self._images.popitem(last=False)
        return rgb


def _serve_lane(conn: Any, decoded: _DecodedImages) -> None:
    while True:
        try:
            name, digest, image = conn.recv()
        except EOFError:  # the parent is gone
            return
        try:
            result = local_image.MODELS[name](decoded.get(digest, image))
        except Exception as exc:  # sent back to the parent, which raises it for this image
            conn.send(("error", (type(exc).__name__, _last_line(str(exc)))))
        else:
            conn.send(("ok", result))
        del image
