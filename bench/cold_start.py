"""What a cold container costs the lite profile: its local models load on the first call.

    python -m bench.cold_start [--runs N]

Each run is a fresh interpreter (`--child`) that imports the core app with the lite
profile's settings (local text and image models on the AWS backend, moto for S3 with the
photo and the known-faces gallery) and calls `analyse_text` and `analyse_image` three times
each: the first call loads the models (nothing loads at import), the later ones are warm.
The extra time of the first call, scaled to each function's deployed memory as the cost
benchmark scales handler time, is what one cold start adds to the bill; the peak RSS says
whether the deployed memory is enough. Times are the minimum over the runs (the machine is
shared: other work only adds time). Writes bench/results/cold_start.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.environment import machine, write_result

ROOT = Path(__file__).resolve().parents[1]
CALLS = 3


def _child(gallery_file: Path) -> dict[str, Any]:
    """One cold container: time every call of both lite functions."""
    import boto3
    from moto import mock_aws

    from bench.aws_cost import PROFILES
    from bench.payloads import _source_picture
    from chalicelib.analysis.gallery_sync import GALLERY_KEY

    lite = PROFILES["lite"]
    os.environ.update(
        {
            "MAGPIE_BACKEND": "aws",
            "MAGPIE_HOME": tempfile.mkdtemp(prefix="bench-cold-"),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "MEDIA_BUCKET": "magpie-media",
            "FACE_GALLERY_BUCKET": "magpie-faces",
            "TEXT_PROVIDER": "local",
            "IMAGE_PROVIDER": "local",
            "TEXT_CAPABILITIES": lite["TEXT_CAPABILITIES"],
            "IMAGE_CAPABILITIES": lite["IMAGE_CAPABILITIES"],
        }
    )
    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in ("magpie-media", "magpie-faces"):
            s3.create_bucket(Bucket=bucket)
        buffer = io.BytesIO()
        _source_picture("astronaut").save(buffer, format="JPEG", quality=92)
        for call in range(CALLS):  # one key per call: the analyser caches by key
            s3.put_object(
                Bucket="magpie-media", Key=f"media/300/{call}.jpg", Body=buffer.getvalue()
            )
        # Enrolled beforehand by the parent (enrolling here would load dlib before the clock).
        s3.put_object(Bucket="magpie-faces", Key=GALLERY_KEY, Body=gallery_file.read_bytes())

        rss_before = _rss_mb()
        started = time.perf_counter()
        sys.path.insert(0, str(ROOT))
        import app  # the core app, as Lambda imports it

        import_ms = (time.perf_counter() - started) * 1000
        message = _corpus_text_message()
        calls = {
            "analyse_text": lambda n: app.analyse_text(
                {**message, "Text": f"{message['Text']} {n}"}, None
            ),
            "analyse_image": lambda n: app.analyse_image({"Key": f"media/300/{n}.jpg"}, None),
        }
        timings: dict[str, list[float]] = {}
        rss: dict[str, float] = {}
        for name, call in calls.items():
            timings[name] = []
            for n in range(CALLS):
                t0 = time.perf_counter()
                result = call(n)
                timings[name].append((time.perf_counter() - t0) * 1000)
                if result.get("Errors"):
                    raise RuntimeError(f"{name} failed: {result['Errors']}")
                if name == "analyse_image" and not result["Analysis"]["CelebrityFaces"]:
                    raise RuntimeError("the known face was not recognised from the S3 gallery")
            rss[name] = _rss_mb()
    return {"import_ms": import_ms, "calls_ms": timings, "rss_mb": rss, "rss_start_mb": rss_before}


def _corpus_text_message() -> dict[str, Any]:
    """The corpus's first text-only message, as MESSAGE_RECEIVED carries it."""
    from bench import payloads
    from chalicelib.ingress.activity import translate

    first = next(m for m in payloads.messages() if not m["images"])
    delivery = json.loads(payloads.delivery([first]))
    (received,) = translate(delivery, payloads.corpus()["bot_user_id"]).messages
    return received.to_detail()


def _known_faces_gallery(folder: Path) -> Path:
    """The corpus's known people, enrolled as `magpie faces --aws add` would."""
    from bench.aws_cost import enrol_known_faces
    from chalicelib.analysis.gallery import FaceGallery

    gallery = FaceGallery(folder)
    enrol_known_faces(gallery)
    return gallery.path


def _rss_mb() -> float:
    """Peak RSS of this interpreter. VmHWM, not ru_maxrss: Linux carries ru_maxrss across
    exec, so a child started by a large parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(runs: int) -> dict[str, Any]:
    from bench import pricing
    from bench.aws_cost import lite_image_functions
    from bench.meter import cpu_scale

    samples = []
    with tempfile.TemporaryDirectory(prefix="bench-faces-") as tmp:
        gallery_file = _known_faces_gallery(Path(tmp))
        for _ in range(runs):
            samples.append(_run_child(gallery_file))
    gb_second = pricing.price_table()["prices"]["lambda"]["gb_second_x86_64"]
    functions = {}
    for name, deployed in lite_image_functions().items():
        # Minimums: on a shared machine the other work only ever adds time.
        first = min(s["calls_ms"][name][0] for s in samples)
        warm = min(t for s in samples for t in s["calls_ms"][name][1:])
        extra_here = max(0.0, first - warm)
        memory = int(deployed["memory_mb"])
        extra_billed = extra_here * cpu_scale(memory)
        functions[name] = {
            "memory_mb": memory,
            "first_call_ms": first,
            "warm_call_ms": warm,
            "extra_ms_here": extra_here,
            "extra_billed_ms": extra_billed,
            "usd_per_cold_start": extra_billed / 1000 * memory / 1024 * gb_second,
            "peak_rss_mb": max(s["rss_mb"][name] for s in samples),
        }
    return {
        "machine": machine(),
        "runs": runs,
        "import_ms_median": statistics.median(s["import_ms"] for s in samples),
        "functions": functions,
    }


def _run_child(gallery_file: Path) -> dict[str, Any]:
    out = subprocess.run(  # noqa: S603 (our interpreter, fixed code)
        [sys.executable, "-m", "bench.cold_start", "--child", str(gallery_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", metavar="GALLERY", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(Path(args.child))))
        return
    result = run(args.runs)
    write_result("cold_start", result)
    print(json.dumps(result["functions"], indent=2))


if __name__ == "__main__":
    main()
