"""Publishing a cloud assembly as `cdk deploy` does: the asset manifest read, directories
zipped as CDK zips them, the bootstrap parameter and every asset in place (moto)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import boto3
import pytest
from deploy import Account, DeployError, bootstrap, publish_assets, read_assembly, zip_directory
from moto import mock_aws

BUCKET = "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"


def _destination(key: str) -> dict:
    return {
        "current_account-current_region": {
            "bucketName": BUCKET,
            "objectKey": key,
            "assumeRoleArn": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/x",
        }
    }


@pytest.fixture
def cdk_out(tmp_path: Path) -> Path:
    """A cloud assembly shaped like `make synth`'s: a zip file, a layer directory, the
    template."""
    (tmp_path / "asset.abc.zip").write_bytes(b"PK-not-really-a-zip")
    layer = tmp_path / "asset.def"
    (layer / "python" / "pkg").mkdir(parents=True)
    (layer / "python" / "pkg" / "__init__.py").write_text("X = 1\n")
    (layer / "python" / "a.py").write_text("A = 1\n")
    (tmp_path / "MagpieStack.template.json").write_text('{"Resources": {}}')
    assets = {
        "version": "55.0.0",
        "files": {
            "abc": {
                "source": {"path": "asset.abc.zip", "packaging": "file"},
                "destinations": _destination("abc.zip"),
            },
            "def": {
                "source": {"path": "asset.def", "packaging": "zip"},
                "destinations": _destination("def.zip"),
            },
            "tpl": {
                "source": {"path": "MagpieStack.template.json", "packaging": "file"},
                "destinations": _destination("tpl.json"),
            },
        },
        "dockerImages": {},
    }
    (tmp_path / "MagpieStack.assets.json").write_text(json.dumps(assets))
    manifest = {
        "artifacts": {
            "MagpieStack": {
                "type": "aws:cloudformation:stack",
                "properties": {
                    "templateFile": "MagpieStack.template.json",
                    "stackTemplateAssetObjectUrl": f"s3://{BUCKET}/tpl.json",
                    "requiresBootstrapStackVersion": 6,
                    "bootstrapStackVersionSsmParameter": "/cdk-bootstrap/hnb659fds/version",
                },
            }
        }
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def test_the_assembly_is_read_with_the_accounts_bucket_and_the_templates_url(cdk_out) -> None:
    assembly = read_assembly(cdk_out, Account(account="111122223333", region="eu-west-1"))

    bucket = "cdk-hnb659fds-assets-111122223333-eu-west-1"
    assert {(u.source.name, u.packaging, u.bucket, u.key) for u in assembly.uploads} == {
        ("asset.abc.zip", "file", bucket, "abc.zip"),
        ("asset.def", "zip", bucket, "def.zip"),
        ("MagpieStack.template.json", "file", bucket, "tpl.json"),
    }
    assert assembly.template_url == f"https://{bucket}.s3.amazonaws.com/tpl.json"
    assert assembly.bootstrap_version == 6


def test_an_assembly_with_image_assets_is_refused(cdk_out) -> None:
    assets = json.loads((cdk_out / "MagpieStack.assets.json").read_text())
    assets["dockerImages"] = {"img": {}}
    (cdk_out / "MagpieStack.assets.json").write_text(json.dumps(assets))

    with pytest.raises(DeployError, match="image assets"):
        read_assembly(cdk_out, Account())


def test_a_directory_is_zipped_reproducibly_with_relative_sorted_paths(cdk_out) -> None:
    first = zip_directory(cdk_out / "asset.def")
    (cdk_out / "asset.def" / "python" / "a.py").touch()  # a newer mtime changes nothing

    assert zip_directory(cdk_out / "asset.def") == first
    archive = zipfile.ZipFile(io.BytesIO(first))
    assert archive.namelist() == ["python/a.py", "python/pkg/__init__.py"]
    assert archive.read("python/pkg/__init__.py") == b"X = 1\n"


@mock_aws
def test_bootstrap_and_publish_leave_what_cdk_deploy_reads(cdk_out) -> None:
    session = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    assembly = read_assembly(cdk_out, Account(account="123456789012"))

    bootstrap(session, None, assembly)
    publish_assets(session, None, assembly)

    ssm, s3 = session.client("ssm"), session.client("s3")
    version = ssm.get_parameter(Name="/cdk-bootstrap/hnb659fds/version")["Parameter"]["Value"]
    assert version == "6"
    bucket = "cdk-hnb659fds-assets-123456789012-us-east-1"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {"abc.zip", "def.zip", "tpl.json"}
    layer = s3.get_object(Bucket=bucket, Key="def.zip")["Body"].read()
    assert zipfile.ZipFile(io.BytesIO(layer)).read("python/a.py") == b"A = 1\n"
    assert s3.get_object(Bucket=bucket, Key="abc.zip")["Body"].read() == b"PK-not-really-a-zip"
