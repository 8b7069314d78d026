"""The Lex V2 bot, built from chalicelib/responders/bot.json (the file the local matcher reads).

Each locale in `localeIds` gets `nluConfidenceThreshold` and every intent, with that
locale's sample utterances (`utterancesByLocale`; the English locales take the intents'
own); the intents' keys in bot.json already follow CfnBot's IntentProperty. The version's
logical id carries a hash of the definition, so editing bot.json creates a new version and
moves the alias to it. The alias calls the core app's `lex_fulfilment` as its code hook in
every locale; the function's invoke permission is scoped to that alias.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lex as lex
from constructs import Construct

from chalicelib.responders.bot_definition import intents_for_locale

ALIAS_NAME = "live"
CODE_HOOK_INTERFACE_VERSION = "1.0"


def load_bot_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def definition_hash(raw: dict[str, Any]) -> str:
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def _intent(raw: dict[str, Any]) -> lex.CfnBot.IntentProperty:
    utterances = [
        lex.CfnBot.SampleUtteranceProperty(utterance=u["utterance"])
        for u in raw.get("sampleUtterances", [])
    ]
    hook = raw.get("fulfillmentCodeHook", {})
    return lex.CfnBot.IntentProperty(
        name=raw["name"],
        description=raw.get("description"),
        parent_intent_signature=raw.get("parentIntentSignature"),
        sample_utterances=utterances or None,
        fulfillment_code_hook=lex.CfnBot.FulfillmentCodeHookSettingProperty(
            enabled=bool(hook.get("enabled", False))
        ),
    )


class LexBot(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bot_file: Path,
        fulfilment: lambda_.IFunction,
        fulfilment_name_ref: str,
    ) -> None:
        super().__init__(scope, construct_id)
        raw = load_bot_json(bot_file)
        self.locales: list[str] = list(raw["localeIds"])

        # The bot only reads and writes text: it never calls Polly (voice) or Comprehend
        # (sentiment is off), so its role needs no permissions at all.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lexv2.amazonaws.com"),
            description="Magpie's Lex V2 bot (text only: no Polly, no Comprehend)",
        )

        self.bot = lex.CfnBot(
            self,
            "Bot",
            name=raw["name"],
            description=raw.get("description"),
            role_arn=self.role.role_arn,
            # CfnBot types DataPrivacy loosely, so the struct class would be written
            # in camelCase: give CloudFormation's own keys.
            data_privacy={"ChildDirected": bool(raw.get("childDirected", False))},
            idle_session_ttl_in_seconds=int(raw.get("idleSessionTtlInSeconds", 300)),
            auto_build_bot_locales=True,
            bot_locales=[
                lex.CfnBot.BotLocaleProperty(
                    locale_id=locale,
                    nlu_confidence_threshold=float(raw["nluConfidenceThreshold"]),
                    intents=[_intent(i) for i in intents_for_locale(raw, locale)],
                )
                for locale in self.locales
            ],
        )

        self.version = lex.CfnBotVersion(
            self,
            f"Version{definition_hash(raw)}",
            bot_id=self.bot.attr_id,
            description=f"bot.json {definition_hash(raw)}",
            bot_version_locale_specification=[
                lex.CfnBotVersion.BotVersionLocaleSpecificationProperty(
                    locale_id=locale,
                    bot_version_locale_details=lex.CfnBotVersion.BotVersionLocaleDetailsProperty(
                        source_bot_version="DRAFT"
                    ),
                )
                for locale in self.locales
            ],
        )

        self.alias = lex.CfnBotAlias(
            self,
            "Alias",
            bot_alias_name=ALIAS_NAME,
            bot_id=self.bot.attr_id,
            bot_version=self.version.attr_bot_version,
            bot_alias_locale_settings=[
                lex.CfnBotAlias.BotAliasLocaleSettingsItemProperty(
                    locale_id=locale,
                    bot_alias_locale_setting=lex.CfnBotAlias.BotAliasLocaleSettingsProperty(
                        enabled=True,
                        code_hook_specification=lex.CfnBotAlias.CodeHookSpecificationProperty(
                            lambda_code_hook=lex.CfnBotAlias.LambdaCodeHookProperty(
                                code_hook_interface_version=CODE_HOOK_INTERFACE_VERSION,
                                lambda_arn=fulfilment.function_arn,
                            )
                        ),
                    ),
                )
                for locale in self.locales
            ],
        )

        self.permission = lambda_.CfnPermission(
            self,
            "InvokeFulfilment",
            action="lambda:InvokeFunction",
            function_name=fulfilment_name_ref,
            principal="lexv2.amazonaws.com",
            source_arn=self.alias.attr_arn,
            source_account=cdk.Stack.of(self).account,
        )

    @property
    def bot_id(self) -> str:
        return self.bot.attr_id

    @property
    def alias_id(self) -> str:
        return self.alias.attr_bot_alias_id

    @property
    def alias_arn(self) -> str:
        return self.alias.attr_arn
