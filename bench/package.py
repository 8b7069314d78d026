"""Package size of each Chalice app: `chalice package --stage prod OUTDIR`, zip bytes.

`python -m bench.package` writes bench/results/package.json. Chalice downloads Lambda wheels
from PyPI for each app's requirements.txt (cached under each app's .chalice/deployments/, which
git ignores), so the first run needs the network and later runs are fast. The zip is then
opened to say what makes it big: the largest top-level packages, compressed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from magpie.apps import APP_DIRS

from bench.environment import machine, write_result

APPS = APP_DIRS
TARGET_BYTES = {"ingress": 1_000_000}
LAMBDA_ZIP_LIMIT = 50 * 1024 * 1024  # direct upload limit; 250 MB unzipped
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


def chalice_bin() -> str:
    return str(Path(sys.executable).with_name("chalice"))


def top_level_sizes(zip_path: Path, top: int = 8) -> list[dict[str, Any]]:
    """The biggest top-level entries of a zip (packages, chalicelib, app.py), compressed."""
    sizes: dict[str, list[int]] = {}
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            head = info.filename.split("/", 1)[0]
            if head.endswith(".dist-info") or head.endswith(".libs"):
                head = head.split("-", 1)[0].split(".libs")[0].lower() + " (metadata/libs)"
            entry = sizes.setdefault(head, [0, 0])
            entry[0] += info.compress_size
            entry[1] += info.file_size
    ranked = sorted(sizes.items(), key=lambda kv: -kv[1][0])[:top]
    return [{"entry": k, "zipped_bytes": v[0], "unzipped_bytes": v[1]} for k, v in ranked]


def package_app(name: str, app_dir: Path, out_root: Path) -> dict[str, Any]:
    out = out_root / name
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    started = time.time()
    process = subprocess.run(  # noqa: S603 (our own venv's chalice, fixed arguments)
        [chalice_bin(), "package", "--stage", "prod", str(out)],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    seconds = round(time.time() - started, 1)
    zip_path = out / "deployment.zip"
    if process.returncode != 0 or not zip_path.exists():
        return {
            "app": name,
            "ok": False,
            "seconds": seconds,
            "error": (process.stderr or process.stdout)[-2000:],
        }
    with zipfile.ZipFile(zip_path) as archive:
        unzipped = sum(i.file_size for i in archive.infolist())
        files = len(archive.infolist())
    size = zip_path.stat().st_size
    target = TARGET_BYTES.get(name)
    return {
        "app": name,
        "ok": True,
        "seconds": seconds,
        "zip_bytes": size,
        "unzipped_bytes": unzipped,
        "files": files,
        "requirements": (app_dir / "requirements.txt").read_text().strip().splitlines()
        if (app_dir / "requirements.txt").exists()
        else [],
        "largest": top_level_sizes(zip_path),
        "target_bytes": target,
        "meets_target": None if target is None else size < target,
        "within_lambda_limits": size < LAMBDA_ZIP_LIMIT and unzipped < LAMBDA_UNZIPPED_LIMIT,
    }


def run(apps: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-package-") as tmp:
        results = {}
        for name in apps:
            results[name] = package_app(name, APPS[name], Path(tmp))
            r = results[name]
            size = f"{r['zip_bytes'] / 1e6:.2f} MB" if r["ok"] else "FAILED"
            print(f"  {name}: {size} in {r['seconds']} s")
    return {"machine": machine(), "command": "chalice package --stage prod OUTDIR", "apps": results}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--apps", default=",".join(APPS))
    args = parser.parse_args(argv)
    path = write_result("package", run(args.apps.split(",")))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
