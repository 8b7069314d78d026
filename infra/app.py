#!/usr/bin/env python3
"""The CDK app: one stack, MagpieStack, checked by cdk-nag's AwsSolutions pack.

The CDK context `magpie:profile` picks `full` (the default) or `lite` (magpie_stack/lite.py).
Synthesizes offline: no account or region is looked up (the stack is environment-agnostic);
Chalice's packaging needs only AWS_DEFAULT_REGION, which is defaulted here. The Chalice
apps are packaged into MAGPIE_BUILD_DIR (default infra/build/), never into the work tree.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

INFRA = Path(__file__).resolve().parent
REPO = INFRA.parent
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
# Debian's Node 20 still runs jsii; say so once here (README) rather than in every synth.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
sys.path[:0] = [str(INFRA), str(REPO)]

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402
from magpie_stack.lite import CONTEXT_KEY, resolve_profile  # noqa: E402
from magpie_stack.stack import MagpieStack  # noqa: E402

# Behaviour flags this stack is written for (they live here so a plain `python app.py`
# synthesizes the same template as the CDK CLI).
FEATURE_FLAGS = {
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    "@aws-cdk/aws-iam:minimizePolicies": True,
    "@aws-cdk/aws-events:requireEventBusPolicySid": True,
    "@aws-cdk/core:checkSecretUsage": True,
    "@aws-cdk/core:validateSnapshotRemovalPolicy": True,
}


def main() -> None:
    app = cdk.App(context=FEATURE_FLAGS)
    # `full` (default) or `lite`: `cdk synth --context magpie:profile=lite` (lite.py).
    try:
        profile = resolve_profile(app.node.try_get_context(CONTEXT_KEY))
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    build_dir = Path(os.environ.get("MAGPIE_BUILD_DIR") or INFRA / "build").resolve()
    MagpieStack(app, "MagpieStack", repo_root=REPO, build_dir=build_dir, profile=profile)
    # Any finding not acknowledged (with its reason, magpie_stack/nag.py) fails the synth.
    cdk.Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True)
    )
    app.synth()


if __name__ == "__main__":
    main()
