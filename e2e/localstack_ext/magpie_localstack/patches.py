"""Named workarounds for LocalStack 4.14.0, each applied by a hook in plugins.py.

Each is the smallest change that lets MagpieStack's unchanged template deploy and run here;
the pure part of each is a function below (tested in the main virtualenv), the patch that
applies it imports LocalStack only when it runs.

- `firehose_stream_name`: the CloudFormation provider of AWS::KinesisFirehose::DeliveryStream
  generates a name for a stream declared without one, but forgets it in the resource model
  it then reads back (`Resource provider operation failed: 'DeliveryStreamName'`).
- `placeholder_arn`: resource types LocalStack does not emulate (Lex, Athena, Glue) deploy as
  placeholders whose every attribute reads `unknown`; IAM then refuses a policy naming
  `unknown` as a resource (`MalformedPolicyDocument`). Their `Arn` attributes get a
  well-formed ARN that names the placeholder instead.
- `numbers_as_text`: an EventBridge input transformer whose text (not JSON) template takes
  a number from the event fails in LocalStack (`expected str instance, float found`), so
  the alert e-mail of a negative message (its score) is never delivered. EventBridge writes
  the number's JSON text; so does this.
- `gateway_interface`: the gateway listens on the port of GATEWAY_LISTEN but on every
  interface, whatever host it names (its twisted server leaves the interface out); it is
  bound to the host named, so 127.0.0.1 means loopback only.
- `dynalite_command`: LocalStack's DynamoDB runs AWS's "DynamoDB Local", a Java download
  this machine cannot reach; dynalite (npm, plain Node) answers the same API.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Callable
from typing import Any

MOCKED_REFERENCE = "unknown"  # LocalStack's value for a placeholder's attributes

# --- Firehose: the generated stream name, kept --------------------------------------------


def firehose_stream_name(
    desired_state: dict[str, Any], generate: Callable[[], str]
) -> dict[str, Any]:
    """The desired state with a DeliveryStreamName: its own, or a generated one."""
    if not desired_state.get("DeliveryStreamName"):
        desired_state["DeliveryStreamName"] = generate()
    return desired_state


def apply_firehose_stream_name() -> None:
    from localstack.services.cloudformation.provider_utils import generate_default_name
    from localstack.services.kinesisfirehose.resource_providers import (
        aws_kinesisfirehose_deliverystream as firehose,
    )
    from localstack.utils.patch import patch

    @patch(firehose.KinesisFirehoseDeliveryStreamProvider.create)
    def create(fn: Callable[..., Any], self: Any, request: Any) -> Any:
        firehose_stream_name(
            request.desired_state,
            lambda: generate_default_name(request.stack_name, request.logical_resource_id),
        )
        return fn(self, request)


# --- placeholders: well-formed ARNs ------------------------------------------------------


def placeholder_arn(
    resource_type: str, logical_id: str, *, partition: str, region: str, account: str
) -> str:
    """An ARN in the placeholder's service that names it: `AWS::Lex::BotAlias`, `LexAlias`
    -> `arn:aws:lex:us-east-1:000000000000:botalias/LexAlias`."""
    _, service, kind = resource_type.split("::")
    resource = re.sub(r"[^a-z0-9]", "", kind.lower())
    return f"arn:{partition}:{service.lower()}:{region}:{account}:{resource}/{logical_id}"


def is_arn_attribute(property_name: str) -> bool:
    return property_name == "Arn" or property_name.endswith("Arn")


def apply_placeholder_arn() -> None:
    from localstack.services.cloudformation.engine.v2.change_set_model_preproc import (
        ChangeSetModelPreproc,
    )
    from localstack.utils.patch import patch

    @patch(ChangeSetModelPreproc._deployed_property_value_of)
    def deployed_property_value_of(
        fn: Callable[..., Any],
        self: Any,
        resource_logical_id: str,
        property_name: str,
        resolved_resources: dict[str, Any],
    ) -> Any:
        value = fn(self, resource_logical_id, property_name, resolved_resources)
        if value != MOCKED_REFERENCE or not is_arn_attribute(property_name):
            return value
        stack = self._change_set.stack
        return placeholder_arn(
            resolved_resources[resource_logical_id]["Type"],
            resource_logical_id,
            partition="aws",
            region=stack.region_name,
            account=stack.account_id,
        )


# --- EventBridge: numbers in a text input template ---------------------------------------


def numbers_as_text(template: str, replacements: dict[str, Any]) -> dict[str, Any]:
    """The replacements with each number as its JSON text, for a template that is not JSON
    (a JSON template places numbers itself)."""
    if template.strip().startswith("{"):
        return replacements
    return {
        key: json.dumps(value)
        if isinstance(value, int | float) and not isinstance(value, bool)
        else value
        for key, value in replacements.items()
    }


def apply_numbers_as_text() -> None:
    from localstack.services.events import target
    from localstack.utils.patch import patch

    @patch(target.replace_template_placeholders)
    def replace_template_placeholders(
        fn: Callable[..., Any], template: str, replacements: dict[str, Any]
    ) -> Any:
        return fn(template, numbers_as_text(template, replacements))


# --- the gateway: bound to the host GATEWAY_LISTEN names -----------------------------------


def gateway_interface(listen: list[tuple[str, int]], port: int) -> str:
    """The host GATEWAY_LISTEN names for `port` ("": every interface, when it names none)."""
    return next((host for host, listened in listen if listened == port), "")


def apply_gateway_interface() -> None:
    from localstack import config
    from localstack.runtime.server import twisted as server
    from twisted.internet import endpoints

    listen = [(address.host, address.port) for address in config.GATEWAY_LISTEN]

    def tcp4_server_endpoint(
        reactor: Any, port: int, backlog: int = 50, interface: str = ""
    ) -> Any:
        interface = interface or gateway_interface(listen, port)
        return endpoints.TCP4ServerEndpoint(reactor, port, backlog, interface)

    # the server module's view of twisted's endpoints, IPv4 bound to the configured host
    server.endpoints = types.SimpleNamespace(
        TCP4ServerEndpoint=tcp4_server_endpoint,
        TCP6ServerEndpoint=endpoints.TCP6ServerEndpoint,
    )


# --- DynamoDB: dynalite -------------------------------------------------------------------


def dynalite_command(dynalite: str, port: int) -> list[str]:
    """dynalite in memory on loopback; a new table is ACTIVE on the next tick (its default
    half-second wait would only slow every deploy)."""
    return [dynalite, "--host", "127.0.0.1", "--port", str(port), "--createTableMs", "0"]


def apply_dynalite(dynalite: str) -> None:
    from localstack.services.dynamodb.server import DynamodbServer
    from localstack.utils.common import TMP_THREADS, ShellCommandThread
    from localstack.utils.patch import patch

    @patch(DynamodbServer.do_start_thread)
    def do_start_thread(_fn: Callable[..., Any], self: Any) -> Any:
        thread = ShellCommandThread(
            dynalite_command(dynalite, self.port),
            strip_color=True,
            auto_restart=True,
            name="dynalite",
        )
        TMP_THREADS.append(thread)
        thread.start()
        return thread
