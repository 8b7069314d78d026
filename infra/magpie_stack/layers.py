"""Lambda layers the stack builds itself.

Ingress must stay under 1 MB and import fast, yet needs Powertools (idempotency, secrets):
Powertools alone is 0.91 MB zipped. It goes into a layer built here from the same pinned
wheel the other apps bundle (pure Python, so a wheel built for any platform is the Lambda
one), instead of into ingress's own package. No Docker: pip installs into a build folder.
"""

from __future__ import annotations

import re
import subprocess  # nosec B404 (pip, with a fixed argv, at synth time)
import sys
from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

REPO = Path(__file__).resolve().parents[2]


def powertools_requirement() -> str:
    """The `aws-lambda-powertools==X` line the core app pins (one version everywhere)."""
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if re.match(r"aws-lambda-powertools==", line.strip()):
            return line.strip()
    raise RuntimeError("requirements.txt does not pin aws-lambda-powertools")


def build_powertools_layer(build_dir: Path) -> Path:
    """pip-install the pinned Powertools (with its pure-Python dependencies) under
    build_dir/<version>/python, once per version; returns the folder to zip."""
    requirement = powertools_requirement()
    root = build_dir / requirement.split("==")[1]
    marker = root / ".complete"
    if not marker.exists():
        subprocess.run(  # noqa: S603 (fixed argv, our own pin)  # nosec B603
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-compile",
                "--only-binary=:all:",
                "--platform",
                "manylinux2014_x86_64",
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
                "--target",
                str(root / "python"),
                requirement,
            ],
            check=True,
        )
        marker.touch()
    return root


def powertools_layer(scope: Construct, construct_id: str, build_dir: Path) -> lambda_.LayerVersion:
    root = build_powertools_layer(build_dir)
    return lambda_.LayerVersion(
        scope,
        construct_id,
        code=lambda_.Code.from_asset(str(root), exclude=[".complete"]),
        compatible_runtimes=[lambda_.Runtime.PYTHON_3_11],
        compatible_architectures=[lambda_.Architecture.X86_64],
        description=f"{powertools_requirement()} for the ingress webhook",
    )
