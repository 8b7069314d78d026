"""checkov on both synthesized templates: no failed check, every skip with its reason.

checkov lives in a virtualenv of its own (its dependencies clash with the project's pins):
`make checkov` builds .venv-checkov from requirements-checkov.txt, and `make test` does it
first. The skips are written into the template by infra/magpie_stack/nag.py, the one place
a scanner's finding is accepted.
"""

from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.infra.test_template import functions

pytestmark = pytest.mark.slow  # each profile synthesized, then scanned

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


@cache
def scan(template: Path) -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail("checkov is missing: `make checkov` installs it into .venv-checkov")
    result = subprocess.run(
        [
            str(CHECKOV),
            "--file",
            str(template),
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--skip-download",  # offline: the checks ship in the package
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # Exit status 1 is "some check failed"; anything else with no report is a crash.
    assert result.returncode in (0, 1) and result.stdout, result.stderr[-4000:]
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


def report_of(synth) -> dict[str, Any]:
    return scan(synth.outdir / "MagpieStack.template.json")


def test_checkov_finds_nothing_the_stack_does_not_accept(each_synth):
    report = report_of(each_synth)
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 100  # it did read the template
    failed = [
        f"{f['check_id']} {f['resource']}: {f['check_name']}"
        for f in report["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)


def test_every_checkov_skip_says_why(each_synth):
    skipped = report_of(each_synth)["results"]["skipped_checks"]
    assert skipped
    for check in skipped:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason.strip()) >= 40, (check["check_id"], check["resource"], reason)


@pytest.mark.parametrize(
    ("check", "resource"),
    [
        ("CKV_AWS_26", "AWS::SNS::Topic.Alerts"),  # the alert topic is encrypted
        ("CKV_AWS_76", "AWS::Serverless::Api.IngressStageAppChaliceAppRestAPI"),  # access log
        ("CKV_AWS_115", "AWS::Serverless::Function.IngressStageAppChaliceAppAPIHandler"),
        ("CKV_AWS_149", "AWS::SecretsManager::Secret.AlertWebhook"),  # with our key
    ],
)
def test_what_the_scanners_found_is_fixed_not_skipped(each_synth, check, resource):
    passed = report_of(each_synth)["results"]["passed_checks"]
    assert any(p["check_id"] == check and p["resource"].startswith(resource) for p in passed)


def test_the_webhook_url_is_in_no_function_environment(each_synth):
    template = each_synth.expanded
    for name, (_, function) in functions(template).items():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        assert "ALERT_WEBHOOK_URL" not in variables, name
        assert "AlertWebhookUrl" not in json.dumps(variables), name


def test_the_webhook_stage_is_throttled(each_synth):
    (api,) = each_synth.of_type("AWS::Serverless::Api").values()
    (settings,) = api["Properties"]["MethodSettings"]
    assert settings["ResourcePath"] == "/*" and settings["HttpMethod"] == "*"
    assert 0 < settings["ThrottlingRateLimit"] <= settings["ThrottlingBurstLimit"]
    assert "$context.status" in api["Properties"]["AccessLogSetting"]["Format"]
