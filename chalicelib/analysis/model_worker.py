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

One worker serves every image in turn (its models load once, when it starts). On AWS each
Lambda invocation is already such a process, so the lite profile runs the models in-process.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from typing import Any

from chalicelib.errors import InputError, UnavailableError

logger = logging.getLogger(__name__)

# The models' own peak with a 1600 px image is about 2.2 GB of address space (onnxruntime and
# BLAS reserve far more than they touch; resident memory stays under 1 GB).
MEMORY_LIMIT_BYTES = 3 * 1024**3
# A photo takes 1-9 s of model time on this project's 2-core reference machine.
IMAGE_SECONDS = 30.0
# Starting a worker (interpreter, imports, three models) is not charged to any image.
START_SECONDS = 180.0


class ImageBudgetExceededError(InputError):
    """The image used up its memory or time budget; the worker that held it was replaced."""


class ModelFailedError(InputError):
    """A model raised on this image (in the worker); the message names the original error."""


class ModelWorkerUnavailableError(UnavailableError):
    """The worker process could not be started."""


class ModelWorker:
    """Runs `local_image` models by name on image bytes in one reused child process."""

    def __init__(
        self,
        memory_limit: int = MEMORY_LIMIT_BYTES,
        start_seconds: float = START_SECONDS,
    ) -> None:
        self.memory_limit = memory_limit
        self.start_seconds = start_seconds
        self._lock = threading.Lock()  # one image's call at a time on the one worker
        self._process: Any = None
        self._conn: Any = None
        self.starts = 0  # how many processes were started (tests and the log read it)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def run(self, name: str, image: bytes, timeout: float) -> tuple[Any, float]:
        """(`local_image.MODELS[name]` on the decoded `image`, seconds it took), within
        `timeout` seconds. Starting the worker is not counted."""
        if timeout <= 0:
            raise ImageBudgetExceededError(
                f"image used its {IMAGE_SECONDS:.0f} s budget before {name} could run"
            )
        with self._lock:
            conn = self._ensure_started()
            digest = hashlib.sha256(image).hexdigest()
            started = time.perf_counter()
            try:
                conn.send((name, digest, image))
                if not conn.poll(timeout):
                    self._stop(f"{name} still running after {timeout:.1f} s")
                    raise ImageBudgetExceededError(
                        f"{name} exceeded the image's time budget ({timeout:.1f} s left of "
                        f"{IMAGE_SECONDS:.0f} s); the model worker was restarted"
                    )
                status, payload = conn.recv()
                seconds = time.perf_counter() - started
            except (EOFError, OSError) as exc:
                code = self._stop(f"died during {name}")
                raise ImageBudgetExceededError(
                    f"the model worker died during {name} ({_describe_exit(code)}); "
                    "it was restarted"
                ) from exc
        if status == "ok":
            return payload, seconds
        return self._raise(name, payload)

    def _raise(self, name: str, error: tuple[str, str]) -> Any:
        from chalicelib.analysis.local_image import InvalidImageError

        kind, message = error
        if kind == "InvalidImageError":
            raise InvalidImageError(message)
        # The models are native code: after one of them failed, its state is not to be
        # trusted (onnxruntime kept failing on every image after a bad_alloc), so the next
        # image gets a fresh worker.
        with self._lock:
            self._stop(f"{name} raised {kind}")
        if kind == "MemoryError" or "bad_alloc" in message:
            raise ImageBudgetExceededError(
                f"{name} ran out of the worker's {self.memory_limit // 2**20} MiB memory "
                "budget; the model worker was restarted"
            )
        raise ModelFailedError(
            f"{name} failed in the model worker ({kind}: {message}); it was restarted"
        )

    def close(self) -> None:
        with self._lock:
            self._stop("closed")

    def _ensure_started(self) -> Any:
        if self._process is not None and self._process.is_alive():
            return self._conn
        if self._process is not None:
            self._stop("found dead")
        import multiprocessing

        # spawn, not fork: the parent has threads (the web server, the bus workers) whose
        # locks a forked child would inherit held.
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(
            target=serve, args=(child, self.memory_limit), name="magpie-models", daemon=True
        )
        process.start()
        child.close()
        self.starts += 1
        if not parent.poll(self.start_seconds):
            process.kill()
            process.join()
            raise ModelWorkerUnavailableError(
                f"the model worker did not start within {self.start_seconds:.0f} s"
            )
        try:
            parent.recv()  # "ready"
        except EOFError as exc:
            process.join()
            raise ModelWorkerUnavailableError(
                f"the model worker exited while starting ({_describe_exit(process.exitcode)})"
            ) from exc
        self._process, self._conn = process, parent
        logger.info("model worker %d started", process.pid)
        return parent

    def _stop(self, why: str) -> int | None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is None:
            return None
        if process.is_alive():
            process.kill()
        process.join(timeout=10)
        conn.close()
        logger.warning("model worker %d stopped: %s", process.pid, why)
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


def serve(conn: Any, memory_limit: int) -> None:
    """The worker's loop: (name, digest, image) in, ("ok", result) or ("error", ...) out."""
    import resource
    import signal

    from chalicelib.analysis import local_image

    # Ctrl-C reaches the whole process group; the parent decides when this process ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    local_image.load_models()
    conn.send(("ready", None))
    last: tuple[str, Any] | None = None  # the image the capabilities of one image share
    while True:
        try:
            name, digest, image = conn.recv()
        except EOFError:  # the parent is gone
            return
        try:
            if last is None or last[0] != digest:
                last = None  # let the previous image's pixels go before decoding the next
                last = (digest, local_image.decode_image(image))
            result = local_image.MODELS[name](last[1])
        except Exception as exc:  # sent back to the parent, which raises it for this image
            conn.send(("error", (type(exc).__name__, _last_line(str(exc)))))
        else:
            conn.send(("ok", result))
        del image
