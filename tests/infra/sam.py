"""Expand the SAM resources that chalice.cdk emits, as CloudFormation's transform would."""

from __future__ import annotations

import copy
import os
from typing import Any


class _NoManagedPolicies:
    """Every function has its own role, so the transform never looks a managed policy up."""

    def load(self) -> dict[str, str]:
        return {}


def expand(template: dict[str, Any]) -> dict[str, Any]:
    from samtranslator.translator.transform import transform

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    parameters = {
        "AWS::Region": "us-east-1",
        "AWS::AccountId": "123456789012",
        "AWS::Partition": "aws",
    }
    return transform(copy.deepcopy(template), parameters, _NoManagedPolicies())
