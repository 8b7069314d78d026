"""The e2e harness's own modules (e2e/, e2e/localstack_ext) importable by their unit tests.

Those modules run outside this virtualenv (in LocalStack's, or as `make e2e-aws`'s
drivers); the parts tested here import nothing of LocalStack.
"""

from __future__ import annotations

import sys
from pathlib import Path

E2E = Path(__file__).resolve().parents[2] / "e2e"
for folder in (E2E, E2E / "localstack_ext"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
