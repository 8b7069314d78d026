"""The stack's CloudFormation parameters: what whoever deploys Magpie supplies."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk

# The variable each AI port's provider is read from -> (its parameter, the paid provider).
PROVIDER_PARAMETERS = {
    "TEXT_PROVIDER": ("TextProvider", "comprehend"),
    "IMAGE_PROVIDER": ("ImageProvider", "rekognition"),
    "CONVERSATION_PROVIDER": ("ConversationProvider", "lex"),
}


@dataclass(frozen=True)
class Parameters:
    alert_email: cdk.CfnParameter
    bot_user_id: cdk.CfnParameter
    secret_name: cdk.CfnParameter
    webhook_url: cdk.CfnParameter
    x_api_base_url: cdk.CfnParameter
    x_daily_budget: cdk.CfnParameter
    # full only (declare_parameters)
    collection_id: cdk.CfnParameter | None = None
    has_collection: cdk.CfnCondition | None = None
    providers: dict[str, cdk.CfnParameter] | None = None


def declare_parameters(stack: cdk.Stack, *, lite: bool) -> Parameters:
    alert_email = cdk.CfnParameter(
        stack,
        "AlertEmail",
        type="String",
        description="E-mail address that receives Magpie's alerts (confirm the "
        "subscription e-mail SNS sends)",
        allowed_pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        constraint_description="an e-mail address",
    )
    bot_user_id = cdk.CfnParameter(
        stack,
        "TwitterBotUserId",
        type="String",
        description="The bot's own numeric X user id",
        allowed_pattern=r"^[0-9]+$",
        constraint_description="a numeric X user id",
    )
    secret_name = cdk.CfnParameter(
        stack,
        "TwitterCredentialsName",
        type="String",
        default="TwitterSecret",
        description="Name of the Secrets Manager secret holding the X keys {ApiKey, "
        "ApiSecret, AccessToken, AccessTokenSecret} (created by hand, never by the stack)",
    )
    webhook_url = cdk.CfnParameter(
        stack,
        "AlertWebhookUrl",
        type="String",
        default="",
        no_echo=True,
        description="Optional Slack-compatible webhook that alerts are forwarded to",
    )
    x_api_base_url = cdk.CfnParameter(
        stack,
        "XApiBaseUrl",
        type="String",
        default="",
        allowed_pattern=r"^(https?://[^\s/]+)?$",
        constraint_description="empty, or a scheme and host without a path",
        description="Optional other host for X's API (an emulator run's stub X); empty: X",
    )
    x_daily_budget = cdk.CfnParameter(
        stack,
        "XDailyBudgetUsd",
        type="String",
        default="",
        allowed_pattern=r"^([0-9]+(\.[0-9]+)?)?$",
        constraint_description="empty, or a number of US dollars",
        description="Optional daily X budget in USD (X_DAILY_BUDGET_USD): past it replies are "
        "skipped and one alert is raised that day; empty: no budget",
    )
    # lite matches faces against its own gallery, not a collection
    collection_id, has_collection = (None, None) if lite else _rekognition_collection(stack)
    return Parameters(
        alert_email,
        bot_user_id,
        secret_name,
        webhook_url,
        x_api_base_url,
        x_daily_budget,
        collection_id,
        has_collection,
        providers=None if lite else _providers(stack),
    )


def _providers(stack: cdk.Stack) -> dict[str, cdk.CfnParameter]:
    """Which provider answers each AI port (full only; lite runs the local models in its
    container-image functions). `local` needs the local models beside the function's code,
    which a zip function does not have on AWS: it is for an emulator whose functions run in
    the project's own interpreter, where Comprehend, Rekognition and Lex do not exist."""
    return {
        variable: cdk.CfnParameter(
            stack,
            name,
            type="String",
            default=paid,
            allowed_values=[paid, "local"],
            description=f"{variable}: {paid} (default) or local (an emulator run only)",
        )
        for variable, (name, paid) in PROVIDER_PARAMETERS.items()
    }


def _rekognition_collection(stack: cdk.Stack) -> tuple[cdk.CfnParameter, cdk.CfnCondition]:
    """The optional face collection (full only), and whether one was given."""
    collection_id = cdk.CfnParameter(
        stack,
        "RekognitionCollectionId",
        type="String",
        default="",
        allowed_pattern=r"^[a-zA-Z0-9_.\-]*$",
        description="Optional Rekognition face collection of known people",
    )
    has_collection = cdk.CfnCondition(
        stack,
        "HasCollection",
        expression=cdk.Fn.condition_not(cdk.Fn.condition_equals(collection_id.value_as_string, "")),
    )
    return collection_id, has_collection


def provider_environment(params: Parameters, variable: str) -> dict[str, str]:
    """{variable: the provider parameter's value} in full; nothing in lite (its functions
    name their provider themselves)."""
    if params.providers is None:
        return {}
    return {variable: params.providers[variable].value_as_string}
