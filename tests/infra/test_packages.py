"""The Lambda packages: what the synth staged, and `chalice package --stage prod` of each app.

No binary may have been compiled on this host: every extension module comes from a wheel
built for Lambda (manylinux, x86_64, CPython 3.11 or the stable ABI), never from an sdist.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from magpie.apps import APP_DIRS

from tests.infra.conftest import packaging_lock

pytestmark = pytest.mark.slow

APPS = APP_DIRS
LAMBDA_GLIBC = (2, 26)  # Amazon Linux 2, the python3.11 runtime
MAX_ZIP_BYTES = 50 * 1024 * 1024  # Lambda's direct-upload limit
LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def lambda_compatible(tag: str) -> bool:
    """One wheel tag (python-abi-platform) that Lambda python3.11 x86_64 can load."""
    python, abi, platform = tag.split("-")
    if platform == "any":
        return True
    if not (python in ("cp311", "py3") or abi == "abi3"):
        return False
    match = re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", platform)
    if match:
        return (int(match[1]), int(match[2])) <= LAMBDA_GLIBC
    legacy = re.fullmatch(r"(manylinux\w+?)_x86_64", platform)
    return bool(legacy) and LEGACY.get(legacy[1], (99, 0)) <= LAMBDA_GLIBC


def check_zip(path: Path) -> dict[str, list[str]]:
    """dist-info -> wheel tags; fails on any binary not from a Lambda-compatible wheel."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        tags: dict[str, list[str]] = {}
        owner: dict[str, str] = {}
        for name in names:
            if name.endswith(".dist-info/WHEEL"):
                dist = name.split("/")[0]
                text = archive.read(name).decode()
                tags[dist] = [
                    line.split(":", 1)[1].strip()
                    for line in text.splitlines()
                    if line.startswith("Tag:")
                ]
                record = archive.read(f"{dist}/RECORD").decode()
                for line in record.splitlines():
                    owner[line.split(",", 1)[0]] = dist
    binaries = [n for n in names if re.search(r"\.so(\.|$)", n)]
    for binary in binaries:
        dist = owner.get(binary)
        assert dist, f"{path.name}: {binary} comes from no wheel (compiled here?)"
        assert any(lambda_compatible(t) for t in tags[dist]), (binary, tags[dist])
    for dist, wheel_tags in tags.items():
        assert not any(t.endswith("-linux_x86_64") for t in wheel_tags), (dist, wheel_tags)
    return tags


def test_wheel_tag_rules():
    assert lambda_compatible("cp311-cp311-manylinux_2_17_x86_64")
    assert lambda_compatible("cp311-cp311-manylinux2014_x86_64")
    assert lambda_compatible("py3-none-any")
    assert not lambda_compatible("cp311-cp311-manylinux_2_28_x86_64")
    assert not lambda_compatible("cp311-cp311-linux_x86_64")
    assert not lambda_compatible("cp313-cp313-manylinux_2_17_x86_64")


def test_staged_packages_hold_no_host_compiled_binary(synth):
    sizes = {}
    for resource in synth.template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        code = resource["Properties"]["CodeUri"]
        key = code["Key"] if isinstance(code["Key"], str) else json.dumps(code["Key"])
        (asset,) = list(synth.outdir.glob(f"asset.{key.removesuffix('.zip')}*"))
        app = resource["Properties"]["Tags"]["aws-chalice"].rsplit("app=", 1)[1]
        sizes[app] = asset.stat().st_size
        assert sizes[app] < MAX_ZIP_BYTES
        check_zip(asset)
    assert set(sizes) == {"magpie-core", "magpie-ingress", "magpie-responders", "magpie-egress"}
    print("\n" + "\n".join(f"{app}: {size / 1e6:.2f} MB" for app, size in sorted(sizes.items())))


@pytest.mark.parametrize("app", sorted(APPS))
def test_chalice_package_prod_stage_alone(app, tmp_path, tmp_path_factory):
    """Each app packages on its own for `chalice deploy --stage prod` (README)."""
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    with packaging_lock(tmp_path_factory):
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "chalice"),
                "package",
                "--stage",
                "prod",
                str(tmp_path / "out"),
            ],
            cwd=APPS[app],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "could not" not in (result.stdout + result.stderr).lower()
    package = tmp_path / "out" / "deployment.zip"
    check_zip(package)
    template = json.loads((tmp_path / "out" / "sam.json").read_text())
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            assert resource["Properties"]["Role"].startswith("SET ME: the MagpieStack output")
            assert resource["Properties"]["Environment"]["Variables"]["MAGPIE_BACKEND"] == "aws"
    print(f"\n{app}: chalice package --stage prod -> {package.stat().st_size / 1e6:.2f} MB")


def test_ingress_package_stays_under_1_mb_with_powertools_in_a_layer(synth):
    resources = synth.template["Resources"]
    (ingress,) = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::Serverless::Function"
        and r["Properties"]["Tags"]["aws-chalice"].endswith("app=magpie-ingress")
    ]
    key = ingress["Properties"]["CodeUri"]["Key"]
    (asset,) = list(synth.outdir.glob(f"asset.{key.removesuffix('.zip')}*"))
    assert asset.stat().st_size < 1_000_000
    with zipfile.ZipFile(asset) as archive:
        assert not any(n.startswith("aws_lambda_powertools/") for n in archive.namelist())
    (layer_ref,) = ingress["Properties"]["Layers"]
    layer = resources[layer_ref["Ref"]]
    assert layer["Type"] == "AWS::Lambda::LayerVersion"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.11"]
    asset_path = synth.outdir / layer["Metadata"]["aws:asset:path"]
    assert (asset_path / "python" / "aws_lambda_powertools" / "utilities" / "idempotency").is_dir()
