"""The four Chalice apps, packaged by the built-in `chalice.cdk.Chalice` construct.

What this module adds to the plain construct (docs/ARCHITECTURE.md, "Chalice and CDK",
explains why each is needed):

- Several constructs in one process would reuse the first app's `app` and `chalicelib`
  modules: each app is packaged with those modules cleared and its folder first on sys.path.
- The construct names the Chalice stage after its scope; `StageScope` makes that `prod`, so
  the `prod` stage of each app's .chalice/config.json (memory, timeouts, log retention per
  function, environment placeholders) is what the stack deploys too.
- `chalice.cdk` writes `chalice.out/` into the current folder; it is pointed at a build
  folder instead.
- Each function gets its own least-privilege role, its environment from the stack, and (when
  it is invoked asynchronously) a dead-letter queue; each `on_cw_event` rule is moved onto
  the custom bus with a dead-letter queue and a retry policy; each SNS subscription gets the
  stack's topic and a redrive policy. These are overrides of the SAM resources that
  `chalice package` emits, so `chalice deploy --stage prod` of one app still works alone.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from chalice.cdk import Chalice
from chalice.utils import to_cfn_resource_name
from constructs import Construct

CHALICE_STAGE = "prod"
# Every function gets a role from the stack; this only satisfies `manage_iam_role: false`.
PLACEHOLDER_ROLE_ARN = "arn:aws:iam::123456789012:role/replaced-by-the-magpie-stack"
EVENT_RETRY_ATTEMPTS = 4
EVENT_MAX_AGE_SECONDS = 3600


class StageScope(Construct):
    """A scope whose name, as `chalice.cdk.Chalice` reads it, is the Chalice stage."""

    def __init__(self, scope: Construct, construct_id: str, stage: str) -> None:
        super().__init__(scope, construct_id)
        self._stage = stage

    def to_string(self) -> str:
        return self._stage


def _clear_app_modules() -> None:
    for name in list(sys.modules):
        if name == "app" or name == "chalicelib" or name.startswith("chalicelib."):
            del sys.modules[name]


@contextlib.contextmanager
def isolated_app(project_dir: Path, build_dir: Path) -> Iterator[None]:
    """Package one app with fresh `app`/`chalicelib` modules and chalice.out/ in build_dir."""
    saved_modules = {
        k: v
        for k, v in sys.modules.items()
        if k == "app" or k == "chalicelib" or k.startswith("chalicelib.")
    }
    saved_path = list(sys.path)
    _clear_app_modules()
    sys.path.insert(0, str(project_dir))
    # Each synth packages afresh; what an earlier one left is no longer referenced.
    shutil.rmtree(build_dir / "chalice.out", ignore_errors=True)
    build_dir.mkdir(parents=True, exist_ok=True)
    try:
        with contextlib.chdir(build_dir):
            yield
    finally:
        _clear_app_modules()
        sys.modules.update(saved_modules)
        sys.path[:] = saved_path


class ChaliceApp(Construct):
    """One Chalice app in the stack, with helpers to wire its functions."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project_dir: Path,
        build_dir: Path,
        stage: str = CHALICE_STAGE,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_retention = log_retention
        self.project_dir = project_dir
        self.config = json.loads((project_dir / ".chalice" / "config.json").read_text())
        self.app_name: str = self.config["app_name"]
        stage_scope = StageScope(self, "Stage", stage)
        with isolated_app(project_dir, build_dir):
            self.chalice = Chalice(
                stage_scope,
                "App",
                source_dir=str(project_dir),
                stage_config={"manage_iam_role": False, "iam_role_arn": PLACEHOLDER_ROLE_ARN},
                preserve_logical_ids=False,
            )
        # The template chalice packaged, before CDK renamed its logical ids.
        sam_dir = Path(self.chalice._sam_package_dir)
        self.sam = json.loads((sam_dir / "sam.json").read_text())
        self.deployment_zip = sam_dir / "deployment.zip"
        self.roles: dict[str, iam.Role] = {}
        self.environment: dict[str, dict[str, str]] = {}

    # --- looking things up -------------------------------------------------------------

    @property
    def function_names(self) -> list[str]:
        """The Chalice names of every function, e.g. `download_media`, `api_handler`."""
        return list(self.logical_ids)

    @property
    def logical_ids(self) -> dict[str, str]:
        """Chalice function name -> its logical id in the packaged (SAM) template."""
        found = {}
        for logical_id, resource in self.sam["Resources"].items():
            if resource["Type"] == "AWS::Serverless::Function":
                found[self._name_of(logical_id, resource)] = logical_id
        return found

    def _name_of(self, logical_id: str, resource: Mapping[str, Any]) -> str:
        handler = resource["Properties"]["Handler"]  # app.<python function> or app.app
        if handler == "app.app":
            return "api_handler"  # Chalice's name for the REST handler (APIHandler)
        name = handler.split(".", 1)[1]
        if to_cfn_resource_name(name) != logical_id:
            raise ValueError(f"{self.app_name}: cannot map {logical_id} to a function name")
        return name

    def function_resource(self, name: str) -> cdk.CfnResource:
        return self.chalice.get_resource(self.logical_ids[name])

    def function_arn(self, name: str) -> str:
        return self.function_resource(name).get_att("Arn").to_string()

    def function_name_ref(self, name: str) -> str:
        return cdk.Token.as_string(self.function_resource(name).ref)

    def imported_function(self, name: str) -> lambda_.IFunction:
        """A function object that grants and targets work with (permissions included)."""
        return lambda_.Function.from_function_attributes(
            self,
            f"{self.logical_ids[name]}Imported",
            function_arn=self.function_arn(name),
            same_environment=True,
        )

    def sam_events(self, name: str) -> dict[str, dict[str, Any]]:
        resource = self.sam["Resources"][self.logical_ids[name]]
        return resource["Properties"].get("Events", {})

    def log_group_arn(self, name: str) -> str:
        """The function's log group: Chalice's, or ours where Chalice cannot make one.

        `chalice package` names the REST handler's log group after `ApiHandler` while the
        function is `APIHandler` (a broken Fn::Sub), so api_handler has no
        `log_retention_in_days` in config.json and gets its log group here."""
        logical_id = self.logical_ids[name] + "LogGroup"
        if logical_id in self.sam["Resources"]:
            return self.chalice.get_resource(logical_id).get_att("Arn").to_string()
        log_group = logs.LogGroup(
            self,
            logical_id,
            log_group_name=cdk.Fn.sub("/aws/lambda/${Fn}", {"Fn": self.function_name_ref(name)}),
            retention=self.log_retention,
        )
        return log_group.log_group_arn

    # --- wiring ------------------------------------------------------------------------

    def give_role(self, name: str) -> iam.Role:
        """A role of its own for one function: it may write its own logs, nothing else yet."""
        role = iam.Role(
            self,
            f"{self.logical_ids[name]}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Magpie {self.app_name} {name}",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group_arn(name)],
            )
        )
        self.function_resource(name).add_property_override("Role", role.role_arn)
        self.roles[name] = role
        return role

    def set_environment(self, name: str, variables: Mapping[str, str]) -> None:
        for key, value in variables.items():
            self.chalice.add_environment_variable(key, value, self.logical_ids[name])
        self.environment.setdefault(name, {}).update(variables)

    def unset_environment(self, name: str, keys: list[str]) -> None:
        """Drop variables the `prod` stage declares (as placeholders) that the function,
        as this stack deploys it, does not use."""
        resource = self.function_resource(name)
        for key in keys:
            resource.add_property_deletion_override(f"Environment.Variables.{key}")
            self.environment.get(name, {}).pop(key, None)

    def use_container_image(
        self,
        name: str,
        *,
        image_uri: str,
        command: list[str],
        memory_mb: int,
        timeout_seconds: int,
        architecture: str = "x86_64",
    ) -> None:
        """Run the function from a container image instead of Chalice's zip.

        SAM's image functions take PackageType Image and an ImageUri (passed through, so a
        token works) and refuse CodeUri, Handler, Runtime and Layers; the handler becomes the
        image's command. Everything else Chalice declared (role, log group, tags) stays."""
        resource = self.function_resource(name)
        for chalice_zip_property in ("CodeUri", "Handler", "Runtime", "Layers"):
            resource.add_property_deletion_override(chalice_zip_property)
        resource.add_property_override("PackageType", "Image")
        resource.add_property_override("ImageUri", image_uri)
        resource.add_property_override("ImageConfig", {"Command": list(command)})
        resource.add_property_override("MemorySize", memory_mb)
        resource.add_property_override("Timeout", timeout_seconds)
        resource.add_property_override("Architectures", [architecture])

    def set_async_dead_letter_queue(self, name: str, queue_arn: str) -> None:
        """Failed asynchronous invocations (after Lambda's own retries) land in the queue."""
        self.function_resource(name).add_property_override(
            "DeadLetterQueue", {"Type": "SQS", "TargetArn": queue_arn}
        )
        self.roles[name].add_to_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[queue_arn])
        )

    def move_rules_to_bus(self, name: str, bus_name: str, dead_letter_arn: str) -> list[str]:
        """Put each `on_cw_event` rule of the function on the custom bus, with a DLQ."""
        moved = []
        for event_name, event in self.sam_events(name).items():
            if event["Type"] not in ("CloudWatchEvent", "EventBridgeRule"):
                continue
            prefix = f"Events.{event_name}.Properties"
            resource = self.function_resource(name)
            resource.add_property_override(f"{prefix}.EventBusName", bus_name)
            resource.add_property_override(f"{prefix}.DeadLetterConfig", {"Arn": dead_letter_arn})
            resource.add_property_override(
                f"{prefix}.RetryPolicy",
                {
                    "MaximumRetryAttempts": EVENT_RETRY_ATTEMPTS,
                    "MaximumEventAgeInSeconds": EVENT_MAX_AGE_SECONDS,
                },
            )
            moved.append(event_name)
        return moved

    def subscribe_to_topic(self, name: str, topic_arn: str, dead_letter_arn: str) -> list[str]:
        """Point each `on_sns_message` subscription at the stack's topic, with a redrive."""
        subscribed = []
        for event_name, event in self.sam_events(name).items():
            if event["Type"] != "SNS":
                continue
            prefix = f"Events.{event_name}.Properties"
            resource = self.function_resource(name)
            resource.add_property_override(f"{prefix}.Topic", topic_arn)
            resource.add_property_override(
                f"{prefix}.RedrivePolicy", {"deadLetterTargetArn": dead_letter_arn}
            )
            subscribed.append(event_name)
        return subscribed
