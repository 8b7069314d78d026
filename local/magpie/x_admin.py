"""`magpie x`: connect the bot to X: its webhook, and the subscriptions that feed it.

Everything is X API v2, with the keys Magpie already reads (the TWITTER_* environment
variables locally; the Secrets Manager secret TWITTER_SECRET_ID with --aws):

- webhooks (`/2/webhooks`): add, list, check (X sends the CRC again), delete. X manages them
  with the app-only bearer token, which is obtained from the API key and secret.
- subscriptions for the bot's own account, the one the access token belongs to:
  X Activity (`/2/activity/subscriptions`, one per event type, filtered on the bot's user id)
  and, with `--api account-activity`, the Account Activity API
  (`/2/account_activity/webhooks/:id/subscriptions/all`). Subscribing is done in the bot's
  user context (OAuth 1.0a), since mentions, replies and DMs are private events;
  listing and deleting use the bearer token, as X documents.

Every X error becomes one line on stderr and the exit code of its `MagpieError` family.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from chalicelib.errors import ConfigurationError, InputError, MagpieError

API = "https://api.x.com"
TOKEN_URL = f"{API}/oauth2/token"
ACTIVITY = "activity"
ACCOUNT_ACTIVITY = "account-activity"
BOTH = "both"
# What the bot answers: mentions, replies to it and DMs to it. X bills every event it
# delivers (chalicelib/x_prices.json), so nothing else is subscribed to: a quote is answered
# only when it mentions the bot, and then it arrives as post.mention.create already.
BOT_EVENTS = ("post.mention.create", "post.reply.create", "dm.received")
TAG = "magpie"
_ID = re.compile(r"^[0-9]{1,19}$")
_PAGE = 1000  # the largest page X serves for the subscription list
_MAX_URL = 200  # X's limit on a webhook URL


class XAdminError(InputError):
    """A `magpie x` argument X would refuse (a malformed id, no or several webhooks)."""


@dataclass(frozen=True)
class Subscription:
    """One X Activity subscription, as X lists it."""

    subscription_id: str
    event_type: str
    user_id: str | None
    webhook_id: str | None
    tag: str | None

    @classmethod
    def from_x(cls, item: dict[str, Any]) -> Subscription:
        raw_filter = item.get("filter")
        flt = raw_filter if isinstance(raw_filter, dict) else {}
        return cls(
            subscription_id=str(item.get("subscription_id", "")),
            event_type=str(item.get("event_type", "")),
            user_id=_str_or_none(flt.get("user_id")),
            webhook_id=_str_or_none(item.get("webhook_id")),
            tag=_str_or_none(item.get("tag")),
        )

    def line(self) -> str:
        return (
            f"{ACTIVITY:<16} {self.subscription_id:<20} {self.event_type:<22} "
            f"user_id={self.user_id or '-'} webhook={self.webhook_id or '-'} "
            f"tag={self.tag or '-'}"
        )


class XAdmin:
    """The X API v2 calls behind `magpie x`. Each returns X's `data`, or raises an `XError`."""

    def __init__(self, keys: Any, *, timeout: float = 10.0, base_url: str | None = None) -> None:
        from chalicelib.egress.x_client import XSession

        self._keys = keys
        self._session = XSession(timeout, base_url)
        self._bearer: str | None = None

    # --- webhooks ------------------------------------------------------------------

    def add_webhook(self, url: str) -> dict[str, Any]:
        return self._call("POST", "/2/webhooks", json={"url": _webhook_url(url)})

    def webhooks(self) -> list[dict[str, Any]]:
        return _list(self._call("GET", "/2/webhooks"))

    def check_webhook(self, webhook_id: str) -> dict[str, Any]:
        return self._call("PUT", f"/2/webhooks/{_id(webhook_id, 'webhook')}")

    def delete_webhook(self, webhook_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/2/webhooks/{_id(webhook_id, 'webhook')}")

    # --- the bot's account ---------------------------------------------------------

    def me(self) -> dict[str, Any]:
        return self._call("GET", "/2/users/me", user=True)

    def activity_subscriptions(self) -> list[Subscription]:
        subscriptions: list[Subscription] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"max_results": _PAGE}
            if token:
                params["pagination_token"] = token
            body = self._call("GET", "/2/activity/subscriptions", params=params, whole=True)
            subscriptions += [Subscription.from_x(i) for i in _list(body.get("data"))]
            meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
            token = _str_or_none(meta.get("next_token"))
            if not token:
                return subscriptions

    def subscribe_activity(
        self, event_type: str, user_id: str, webhook_id: str, tag: str
    ) -> Subscription:
        body = {
            "event_type": event_type,
            "filter": {"user_id": user_id},
            "tag": tag,
            "webhook_id": webhook_id,
        }
        data = self._call("POST", "/2/activity/subscriptions", json=body, user=True)
        # X documents three shapes: the reference wraps the new subscription in
        # `subscription`, the quickstart shows it bare and, once, in a list.
        if isinstance(data, list):
            data = data[0] if data and isinstance(data[0], dict) else {}
        created = data.get("subscription") if isinstance(data.get("subscription"), dict) else data
        return Subscription.from_x(created)

    def delete_activity_subscription(self, subscription_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/2/activity/subscriptions/{_id(subscription_id, 'sub')}")

    def account_activity_subscribed(self, webhook_id: str) -> bool:
        path = f"/2/account_activity/webhooks/{_id(webhook_id, 'webhook')}/subscriptions/all"
        return bool(self._call("GET", path, user=True).get("subscribed"))

    def subscribe_account_activity(self, webhook_id: str) -> bool:
        path = f"/2/account_activity/webhooks/{_id(webhook_id, 'webhook')}/subscriptions/all"
        return bool(self._call("POST", path, user=True).get("subscribed"))

    def account_activity_subscriptions(self, webhook_id: str) -> list[str]:
        path = f"/2/account_activity/webhooks/{_id(webhook_id, 'webhook')}/subscriptions/all/list"
        data = self._call("GET", path)
        return [str(s.get("user_id")) for s in _list(data.get("subscriptions")) if s.get("user_id")]

    def unsubscribe_account_activity(self, webhook_id: str, user_id: str) -> bool:
        path = (
            f"/2/account_activity/webhooks/{_id(webhook_id, 'webhook')}"
            f"/subscriptions/{_id(user_id, 'user')}/all"
        )
        return not self._call("DELETE", path).get("subscribed", False)

    # --- HTTP ----------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        user: bool = False,
        whole: bool = False,
    ) -> Any:
        """One request, in the bot's user context or with the app's bearer token; returns
        X's `data` (or the whole body). Error answers raise in the session's hook."""
        from chalicelib.egress.x_client import json_body, translated_errors

        auth = self._oauth1() if user else None
        headers = {} if user else {"Authorization": f"Bearer {self._bearer_token()}"}
        with translated_errors():
            response = self._session.request(
                method, API + path, json=json, params=params, auth=auth, headers=headers
            )
        # X documents 204 (no body) as a possible answer to a DELETE.
        body = json_body(response) if response.content else {}
        if whole:
            return body if isinstance(body, dict) else {}
        data = body.get("data") if isinstance(body, dict) else None
        return data if data is not None else {}

    def _bearer_token(self) -> str:
        """The app-only bearer token, from the API key and secret (POST /oauth2/token)."""
        from chalicelib.egress.x_client import UnconfirmedPost, json_body, translated_errors

        if self._bearer is None:
            with translated_errors():
                response = self._session.post(
                    TOKEN_URL,
                    auth=(self._keys.api_key, self._keys.api_secret),
                    data={"grant_type": "client_credentials"},
                )
            body = json_body(response)
            token = body.get("access_token") if isinstance(body, dict) else None
            if not token or str(body.get("token_type", "")).lower() != "bearer":
                raise UnconfirmedPost("X's token answer carries no bearer token")
            self._bearer = str(token)
        return self._bearer

    def _oauth1(self) -> Any:
        import tweepy

        k = self._keys
        if not (k.access_token and k.access_token_secret):
            raise ConfigurationError(
                "the bot's access token is missing: set TWITTER_ACCESS_TOKEN and "
                "TWITTER_ACCESS_TOKEN_SECRET (or AccessToken and AccessTokenSecret in the secret)"
            )
        handler = tweepy.OAuth1UserHandler(
            k.api_key, k.api_secret, k.access_token, k.access_token_secret
        )
        return handler.apply_auth()


# --- commands ------------------------------------------------------------------------


def cmd_x(args: argparse.Namespace) -> int:
    """Run one `magpie x` command; every `MagpieError` becomes one line and its exit code."""
    try:
        from chalicelib.config import settings

        admin = XAdmin(_keys(args.aws), timeout=args.timeout, base_url=settings().x_api_base_url)
        args.x_func(admin, args)
    except MagpieError as exc:
        print(f"magpie x: {describe(exc)}", file=sys.stderr)
        return exc.exit_code
    return 0


def webhooks_add(admin: XAdmin, args: argparse.Namespace) -> None:
    hook = admin.add_webhook(args.url)
    print(f"webhook {hook.get('id')} {hook.get('url')} valid={_flag(hook.get('valid'))}")
    print("X answered the CRC; next: `magpie x subscribe`")


def webhooks_list(admin: XAdmin, _args: argparse.Namespace) -> None:
    hooks = admin.webhooks()
    for hook in hooks:
        print(
            f"{hook.get('id')}  {hook.get('url')}  valid={_flag(hook.get('valid'))}  "
            f"created {hook.get('created_at', '-')}"
        )
    print(f"{len(hooks)} webhook(s)")


def webhooks_check(admin: XAdmin, args: argparse.Namespace) -> None:
    valid = admin.check_webhook(args.webhook_id).get("valid")
    print(f"webhook {args.webhook_id}: CRC sent, valid={_flag(valid)}")
    if valid is False:
        raise XAdminError(
            f"webhook {args.webhook_id} failed the CRC: is `magpie serve` or the deployed "
            "webhook answering GET ?crc_token= with the consumer secret?"
        )


def webhooks_delete(admin: XAdmin, args: argparse.Namespace) -> None:
    # A 2xx without a `deleted` flag (X's 204) is a deletion too.
    deleted = admin.delete_webhook(args.webhook_id).get("deleted", True)
    print(f"webhook {args.webhook_id}: deleted={_flag(deleted)}")


def subscribe(admin: XAdmin, args: argparse.Namespace) -> None:
    events = _answered_events(args.event)  # refused before X is asked anything
    user = _bot(admin)
    webhook_id = _webhook(admin, args.webhook)
    if args.api in (ACTIVITY, BOTH):
        existing = {(s.event_type, s.user_id, s.webhook_id) for s in admin.activity_subscriptions()}
        for event in events:
            if (event, user, webhook_id) in existing:
                print(f"{ACTIVITY:<16} {event}: already subscribed {_price(event)}")
                continue
            created = admin.subscribe_activity(event, user, webhook_id, args.tag)
            print(f"{created.line()} {_price(event)}")
    if args.api in (ACCOUNT_ACTIVITY, BOTH):
        if admin.account_activity_subscribed(webhook_id):
            print(f"{ACCOUNT_ACTIVITY:<16} webhook={webhook_id}: already subscribed")
        else:
            subscribed = admin.subscribe_account_activity(webhook_id)
            print(f"{ACCOUNT_ACTIVITY:<16} webhook={webhook_id} subscribed={_flag(subscribed)}")


def _answered_events(asked: list[str] | None) -> list[str]:
    """The event types to subscribe to: those asked for, each one Magpie answers."""
    events = asked or list(BOT_EVENTS)
    unanswered = [e for e in events if e not in BOT_EVENTS]
    if unanswered:
        raise XAdminError(
            f"Magpie answers only {', '.join(BOT_EVENTS)}; X would bill every "
            f"{', '.join(unanswered)} it delivers for nothing"
        )
    return events


def _price(event: str) -> str:
    from chalicelib.x_cost import delivery_usd

    return f"(X bills ${delivery_usd(event):.3f} per event delivered)"


def subscriptions(admin: XAdmin, args: argparse.Namespace) -> None:
    user = _bot(admin)
    if args.api in (ACTIVITY, BOTH):
        mine = [s for s in admin.activity_subscriptions() if s.user_id == user]
        for sub in mine:
            print(sub.line())
        print(f"{len(mine)} X Activity subscription(s) for user {user}")
    if args.api in (ACCOUNT_ACTIVITY, BOTH):
        hooks = [args.webhook] if args.webhook else [str(h.get("id")) for h in admin.webhooks()]
        for webhook_id in hooks:
            users = admin.account_activity_subscriptions(webhook_id)
            state = "subscribed" if user in users else "not subscribed"
            print(f"{ACCOUNT_ACTIVITY:<16} webhook={webhook_id} user_id={user}: {state}")


def unsubscribe(admin: XAdmin, args: argparse.Namespace) -> None:
    user = _bot(admin)
    if args.api in (ACTIVITY, BOTH):
        mine = [
            s
            for s in admin.activity_subscriptions()
            if s.user_id == user and (not args.webhook or s.webhook_id == args.webhook)
        ]
        for sub in mine:
            deleted = admin.delete_activity_subscription(sub.subscription_id).get("deleted", True)
            print(
                f"{ACTIVITY:<16} {sub.subscription_id} {sub.event_type}: deleted={_flag(deleted)}"
            )
        print(f"{len(mine)} X Activity subscription(s) removed")
    if args.api in (ACCOUNT_ACTIVITY, BOTH):
        webhook_id = _webhook(admin, args.webhook)
        removed = admin.unsubscribe_account_activity(webhook_id, user)
        print(f"{ACCOUNT_ACTIVITY:<16} webhook={webhook_id}: unsubscribed={_flag(removed)}")


def describe(exc: MagpieError) -> str:
    """One line an operator can act on, for any error `magpie x` raises."""
    from chalicelib.egress.x_client import FinalXError, RateLimited, Unauthorized

    if isinstance(exc, Unauthorized):
        return (
            f"{exc} (X refused the credentials: check the API key and secret and the "
            "bot's access token and secret, and that the app may use this endpoint)"
        )
    if isinstance(exc, RateLimited):
        if exc.reset_at is None:
            return f"{exc} (rate limited; X gave no reset time, try again later)"
        reset = datetime.fromtimestamp(exc.reset_at, UTC).isoformat(timespec="seconds")
        return f"{exc} (rate limited; try again after {reset})"
    if isinstance(exc, FinalXError) and exc.status_code == 403:
        return f"{exc} (X refused: the app's access level or the account does not allow it)"
    return str(exc)


# --- wiring --------------------------------------------------------------------------


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `magpie x` and its sub-commands on the `magpie` parser's subparsers."""
    x = subparsers.add_parser(
        "x",
        help="connect the bot to X: webhooks and subscriptions (X API v2)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    x.add_argument("--aws", action="store_true", help="read the X keys from TWITTER_SECRET_ID")
    x.add_argument("--timeout", type=float, default=10.0, help="seconds per X request")
    x.set_defaults(func=cmd_x)
    sub = x.add_subparsers(dest="x_command", required=True)

    hooks = sub.add_parser("webhooks", help="the app's webhooks").add_subparsers(
        dest="x_webhooks", required=True
    )
    add = hooks.add_parser("add", help="register a webhook URL (X sends a CRC to it)")
    add.add_argument("url", help="the public HTTPS URL of the webhook (the WebhookUrl output)")
    add.set_defaults(x_func=webhooks_add)
    hooks.add_parser("list", help="the app's webhooks").set_defaults(x_func=webhooks_list)
    check = hooks.add_parser("check", help="make X send the CRC again (re-validates)")
    check.add_argument("webhook_id", help="the webhook's id (`magpie x webhooks list`)")
    check.set_defaults(x_func=webhooks_check)
    delete = hooks.add_parser("delete", help="remove a webhook")
    delete.add_argument("webhook_id", help="the webhook's id (`magpie x webhooks list`)")
    delete.set_defaults(x_func=webhooks_delete)

    for name, func, text in (
        ("subscribe", subscribe, "deliver the bot's mentions, replies and DMs (and their price)"),
        ("subscriptions", subscriptions, "the bot's subscriptions"),
        ("unsubscribe", unsubscribe, "stop delivering the bot's events"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument(
            "--api",
            choices=(ACTIVITY, ACCOUNT_ACTIVITY, BOTH),
            default=ACTIVITY,
            help="X Activity (default), the Account Activity API, or both",
        )
        cmd.add_argument("--webhook", help="webhook id (default: the app's only webhook)")
        if func is subscribe:
            cmd.add_argument(
                "--event",
                action="append",
                help=f"X Activity event type (repeatable; default: {', '.join(BOT_EVENTS)})",
            )
            cmd.add_argument("--tag", default=TAG, help="tag X sends with each event")
        cmd.set_defaults(x_func=func)
    return x


# --- helpers -------------------------------------------------------------------------


def _keys(aws: bool) -> Any:
    """The keys `magpie` reads: the environment locally, the Secrets Manager secret with
    --aws. A generated local webhook secret is not an X key, so it is refused."""
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    from chalicelib import backend
    from chalicelib.secrets import twitter_keys

    if aws:
        os.environ["MAGPIE_BACKEND"] = "aws"
        backend.reset()
    try:
        keys = twitter_keys()
    except GetParameterError as exc:
        raise ConfigurationError(f"could not read the X keys' secret: {exc}") from exc
    if keys.generated or not keys.api_key:
        raise ConfigurationError(
            "magpie x needs the app's X keys: set TWITTER_API_KEY, TWITTER_API_SECRET, "
            "TWITTER_ACCESS_TOKEN and TWITTER_ACCESS_TOKEN_SECRET, or use --aws"
        )
    return keys


def _bot(admin: XAdmin) -> str:
    """The account the access token belongs to: the bot whose events are subscribed."""
    me = admin.me()
    user_id = _str_or_none(me.get("id"))
    if not user_id:
        raise XAdminError("X did not say which account the access token belongs to")
    print(f"account @{me.get('username', '?')} (user id {user_id})")
    return user_id


def _webhook(admin: XAdmin, webhook_id: str | None) -> str:
    if webhook_id:
        return _id(webhook_id, "webhook")
    hooks = admin.webhooks()
    if len(hooks) != 1:
        found = ", ".join(str(h.get("id")) for h in hooks) or "none"
        raise XAdminError(
            f"pass --webhook: the app has {len(hooks)} webhook(s) ({found}); "
            "add one with `magpie x webhooks add URL`"
        )
    return str(hooks[0].get("id"))


def _webhook_url(url: str) -> str:
    """X takes a public https URL of at most 200 characters, without a port."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.port or len(url) > _MAX_URL:
        raise XAdminError(
            f"the webhook URL must be https, without a port, at most {_MAX_URL} characters: "
            f"{url[:80]!r}"
        )
    return url


def _id(value: str, what: str) -> str:
    if not _ID.match(value):
        raise XAdminError(f"{what} id must be 1 to 19 digits, got {value[:40]!r}")
    return value


def _list(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _flag(value: Any) -> str:
    return "yes" if value is True else "no" if value is False else "unknown"
