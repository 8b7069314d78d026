"""Deploy a synthesized cloud assembly (`make synth`'s infra/cdk.out) as `cdk deploy` would.

What `cdk bootstrap` leaves in an account and `cdk deploy` does with it, for a LocalStack
account: the bootstrap version parameter and the assets bucket, every file asset of the
asset manifest uploaded under its key (directories zipped, as CDK packages them), then the
stack created from the template's own asset URL with the parameters given, and waited for.
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STACK = "MagpieStack"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
DEPLOY_TIMEOUT_SECONDS = 300.0
# The fixed timestamp CDK gives every entry of a zipped asset, so the zip is reproducible.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class DeployError(RuntimeError):
    """The stack did not reach CREATE_COMPLETE; the message lists what failed."""


@dataclass(frozen=True)
class Account:
    account: str = "000000000000"
    region: str = "us-east-1"
    partition: str = "aws"

    def substitute(self, text: str) -> str:
        """CDK's placeholders in an asset destination, for this account."""
        return (
            text.replace("${AWS::AccountId}", self.account)
            .replace("${AWS::Region}", self.region)
            .replace("${AWS::Partition}", self.partition)
        )


@dataclass(frozen=True)
class Upload:
    source: Path
    packaging: str  # "file" as it is, "zip" a directory zipped
    bucket: str
    key: str


@dataclass(frozen=True)
class Assembly:
    """What a stack of the cloud assembly needs deployed."""

    template_url: str
    uploads: list[Upload]
    bootstrap_parameter: str
    bootstrap_version: int


def read_assembly(cdk_out: Path, account: Account, stack: str = STACK) -> Assembly:
    manifest = json.loads((cdk_out / "manifest.json").read_text())
    properties = manifest["artifacts"][stack]["properties"]
    assets = json.loads((cdk_out / f"{stack}.assets.json").read_text())
    if assets.get("dockerImages"):
        raise DeployError("image assets cannot be published here: deploy the full profile")
    uploads = [
        Upload(
            source=cdk_out / asset["source"]["path"],
            packaging=asset["source"]["packaging"],
            bucket=account.substitute(destination["bucketName"]),
            key=account.substitute(destination["objectKey"]),
        )
        for asset in assets["files"].values()
        for destination in asset["destinations"].values()
    ]
    bucket, _, key = account.substitute(properties["stackTemplateAssetObjectUrl"])[5:].partition(
        "/"
    )
    return Assembly(
        template_url=f"https://{bucket}.s3.amazonaws.com/{key}",
        uploads=uploads,
        bootstrap_parameter=properties["bootstrapStackVersionSsmParameter"],
        bootstrap_version=int(properties["requiresBootstrapStackVersion"]),
    )


def zip_directory(folder: Path) -> bytes:
    """The folder as CDK zips an asset: relative paths, sorted, fixed dates, modes kept."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), ZIP_DATE)
            info.external_attr = (os.stat(path).st_mode & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def body_of(upload: Upload) -> bytes:
    if upload.packaging == "zip":
        return zip_directory(upload.source)
    if upload.packaging == "file":
        return upload.source.read_bytes()
    raise DeployError(f"unknown asset packaging {upload.packaging!r} ({upload.source.name})")


def bootstrap(session: Any, endpoint: str, assembly: Assembly) -> None:
    """What `cdk bootstrap` would have left: the version parameter and the assets bucket."""
    ssm = session.client("ssm", endpoint_url=endpoint)
    ssm.put_parameter(
        Name=assembly.bootstrap_parameter,
        Value=str(assembly.bootstrap_version),
        Type="String",
        Overwrite=True,
    )
    s3 = session.client("s3", endpoint_url=endpoint)
    for bucket in sorted({u.bucket for u in assembly.uploads}):
        s3.create_bucket(Bucket=bucket)


def publish_assets(session: Any, endpoint: str, assembly: Assembly) -> None:
    s3 = session.client("s3", endpoint_url=endpoint)
    for upload in assembly.uploads:
        s3.put_object(Bucket=upload.bucket, Key=upload.key, Body=body_of(upload))


def create_stack(
    session: Any,
    endpoint: str,
    assembly: Assembly,
    parameters: Mapping[str, str],
    stack: str = STACK,
    timeout: float = DEPLOY_TIMEOUT_SECONDS,
) -> dict[str, str]:
    """Create the stack and wait for it; its outputs by key."""
    cfn = session.client("cloudformation", endpoint_url=endpoint)
    cfn.create_stack(
        StackName=stack,
        TemplateURL=assembly.template_url,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=CAPABILITIES,
        OnFailure="DO_NOTHING",
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        description = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        status = description["StackStatus"]
        if status == "CREATE_COMPLETE":
            return {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
        if not status.endswith("_IN_PROGRESS"):
            raise DeployError(f"{stack} is {status}:\n{failures(cfn, stack)}")
        time.sleep(1)
    raise DeployError(f"{stack} not created within {timeout:.0f} s:\n{failures(cfn, stack)}")


def failures(cfn: Any, stack: str) -> str:
    events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
    failed = [e for e in events if e["ResourceStatus"].endswith("_FAILED")]
    return (
        "\n".join(
            f"  {e['LogicalResourceId']} ({e['ResourceType']}): {e.get('ResourceStatusReason', '')}"
            for e in failed
        )
        or "  (no failed resource reported)"
    )


def deploy(
    session: Any, endpoint: str, cdk_out: Path, parameters: Mapping[str, str], account: Account
) -> dict[str, str]:
    """Bootstrap, publish the assets, create the stack: its outputs."""
    assembly = read_assembly(cdk_out, account)
    bootstrap(session, endpoint, assembly)
    publish_assets(session, endpoint, assembly)
    return create_stack(session, endpoint, assembly, parameters)
