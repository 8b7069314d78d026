#!/usr/bin/env bash
# Static security checks (docs/RELIABILITY.md, "Static checks"):
#   1. bandit over the code that ships or runs (bandit.yaml says what is skipped and why);
#   2. pip-audit over every package installed in the project's virtualenv (a superset of
#      each Lambda's requirements), against PyPI's vulnerability data.
#
# pip-audit needs PyPI's JSON API (https://pypi.org/pypi/<name>/<version>/json). Where that
# cannot be reached, every package comes back "could not be audited": this script then says
# so loudly and passes, unless AUDIT_REQUIRE_PIP_AUDIT=1, which makes an unaudited run fail.
# An accepted vulnerability is passed as AUDIT_IGNORE_VULNS="ID ID ..." and explained in
# docs/RELIABILITY.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-.venv/bin}"

echo "== bandit"
"$BIN/bandit" -q -c bandit.yaml -r chalicelib local infra scripts \
  app.py ingress/app.py responders/app.py egress/app.py

echo "== pip-audit"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
ignored=()
for id in ${AUDIT_IGNORE_VULNS:-}; do ignored+=(--ignore-vuln "$id"); done
status=0
"$BIN/pip-audit" --skip-editable --progress-spinner off --desc off -f json -o "$report" \
  "${ignored[@]}" || status=$?

"$BIN/python" - "$report" "$status" "${AUDIT_REQUIRE_PIP_AUDIT:-0}" <<'PY'
import json
import sys

path, status, required = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
dependencies = json.load(open(path))["dependencies"]
vulnerable = [d for d in dependencies if d.get("vulns")]
skipped = [d for d in dependencies if "skip_reason" in d]
for dependency in vulnerable:
    for vuln in dependency["vulns"]:
        fixed = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
        print(f"VULNERABLE {dependency['name']} {dependency['version']}: {vuln['id']} ({fixed})")
audited = len(dependencies) - len(skipped)
print(f"pip-audit: {audited} of {len(dependencies)} packages audited, {len(vulnerable)} vulnerable")
if vulnerable or (status != 0 and not skipped):
    sys.exit(1)
if skipped and not audited:
    print(
        "pip-audit could NOT reach PyPI's vulnerability data (every package: "
        f"{skipped[0]['skip_reason']!r}); nothing was audited."
    )
    sys.exit(1 if required else 0)
for dependency in skipped:
    print(f"not audited: {dependency['name']}: {dependency['skip_reason']}")
sys.exit(1 if skipped and required else 0)
PY
