"""The ingress Lambda stays small: importing it pulls in no Pillow, tweepy or ML stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.cold_path import MEDIA_AND_MODELS

INGRESS = Path(__file__).resolve().parents[2] / "ingress"


def test_importing_the_ingress_app_loads_no_heavy_module():
    code = (
        "import json, sys; import app; "
        f"print(json.dumps(sorted(m for m in {MEDIA_AND_MODELS!r} if m in sys.modules)))"
    )
    env = {**os.environ, "MAGPIE_BACKEND": "aws", "AWS_EC2_METADATA_DISABLED": "true"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=INGRESS,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
