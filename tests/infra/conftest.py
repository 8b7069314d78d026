"""The stack, synthesized once per test session by the CDK CLI (`cdk synth --strict`).

Every infra test shares the one synthesized template of its profile: `synth` is the `full`
profile (the default), `lite_synth` the `lite` one (`--context magpie:profile=lite`). Each
synth runs offline: the CLI from node_modules (`npm ci`), the Chalice apps packaged into a
temporary build folder, and cdk-nag's AwsSolutions checks failing the synth on any finding
not acknowledged.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
CDK = ROOT / "node_modules" / ".bin" / "cdk"
STACK = "MagpieStack"

# The environment `make synth` gives the CDK CLI: offline, no telemetry, no notices.
OFFLINE_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "CDK_DISABLE_VERSION_CHECK": "true",
    "CDK_DISABLE_CLI_TELEMETRY": "true",
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
}


@dataclass
class Synth:
    outdir: Path
    build_dir: Path
    seconds: float
    output: str
    template: dict[str, Any] = field(repr=False)
    profile: str = "full"

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template["Resources"]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    @cached_property
    def expanded(self) -> dict[str, Any]:
        """The template after the SAM transform, as CloudFormation will deploy it."""
        from tests.infra.sam import expand

        return expand(self.template)

    @cached_property
    def validation_report(self) -> dict[str, Any]:
        return json.loads((self.outdir / "validation-report.json").read_text())


def run_cdk_synth(
    outdir: Path, build_dir: Path, profile: str = "full"
) -> subprocess.CompletedProcess[str]:
    if not CDK.exists():
        pytest.fail("the CDK CLI is missing: run `npm ci` at the repository root (make does)")
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_PROFILE", "AWS_SESSION_TOKEN"))
        },
        **OFFLINE_ENV,
        "MAGPIE_BUILD_DIR": str(build_dir),
        # The app command from cdk.json runs `python3`: this interpreter's.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        [
            str(CDK),
            "synth",
            "--strict",
            "--quiet",
            "--no-notices",
            # Named even for `full`: a profile set in cdk.json must not change these tests.
            "--context",
            f"magpie:profile={profile}",
            "--output",
            str(outdir),
        ],
        cwd=INFRA,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def shared_dir(tmp_path_factory) -> Path:
    """A folder every pytest-xdist worker of this run sees (the workers' common base)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def packaging_lock(tmp_path_factory) -> Iterator[None]:
    """One Chalice packaging at a time across workers: each app's deployment cache
    (`.chalice/deployments`) is written by whoever packages it."""
    with (shared_dir(tmp_path_factory) / "magpie-infra.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def session_synth(tmp_path_factory, profile: str) -> Synth:
    """One profile synthesized once per test run, even under pytest-xdist: the first worker
    synthesizes, the others wait for it and read the same cloud assembly."""
    # A developer's shortcut: an earlier synth (MAGPIE_TEST_CDK_OUT, MAGPIE_TEST_CDK_OUT_LITE).
    reuse = os.environ.get("MAGPIE_TEST_CDK_OUT" + ("" if profile == "full" else "_LITE"))
    if reuse:
        outdir = Path(reuse)
        template = json.loads((outdir / f"{STACK}.template.json").read_text())
        return Synth(outdir, outdir, 0.0, "", template, profile)
    name = "magpie-synth" if profile == "full" else f"magpie-synth-{profile}"
    base = shared_dir(tmp_path_factory) / name
    outdir, build_dir, record = base / "cdk.out", base / "build", base / "synth.json"
    # Also one synth at a time: both package the same apps (the lock's reason).
    with packaging_lock(tmp_path_factory):
        if not record.exists():
            base.mkdir(parents=True, exist_ok=True)
            started = time.monotonic()
            result = run_cdk_synth(outdir, build_dir, profile)
            output = result.stdout + result.stderr
            record.write_text(
                json.dumps(
                    {
                        "returncode": result.returncode,
                        "output": output,
                        "seconds": time.monotonic() - started,
                    }
                )
            )
        done = json.loads(record.read_text())
    if done["returncode"] != 0:
        pytest.fail(
            f"cdk synth --strict ({profile}) failed ({done['returncode']}):\n"
            f"{done['output'][-6000:]}"
        )
    template = json.loads((outdir / f"{STACK}.template.json").read_text())
    return Synth(outdir, build_dir, done["seconds"], done["output"], template, profile)


@pytest.fixture(scope="session")
def synth(tmp_path_factory) -> Synth:
    """The `full` profile (Comprehend, Rekognition, Lex)."""
    return session_synth(tmp_path_factory, "full")


@pytest.fixture(scope="session")
def lite_synth(tmp_path_factory) -> Synth:
    """The `lite` profile (the local models in container-image functions, no Lex)."""
    return session_synth(tmp_path_factory, "lite")


@pytest.fixture(params=["full", "lite"])
def each_synth(request) -> Synth:
    """Either profile, for what must hold in both (cdk-nag, cfn-lint, least privilege)."""
    return request.getfixturevalue("synth" if request.param == "full" else "lite_synth")
