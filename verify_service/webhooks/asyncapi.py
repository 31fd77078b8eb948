"""The AsyncAPI 3.0.0 document of the events sent to the account service (``GET /api/v1/asyncapi.json``).

Generated from the event models (``webhooks/events.py``), never written by hand: one channel (the
account service's webhook endpoint), one message per public event type whose payload is the webhook
body ``{type, timestamp, data}``, the Standard Webhooks headers, and one ``send`` operation. The
schemas are pydantic's, with their references pointing into ``components/schemas``.
"""

from __future__ import annotations

import functools
import urllib.parse
from typing import Any

from pydantic.json_schema import models_json_schema

from verify_service.webhooks.event_examples import examples
from verify_service.webhooks.events import PUBLIC_EVENT_MODELS, UTC_TIME_PATTERN

CHANNEL = "accountServiceWebhook"
COMPONENTS = "#/components/schemas/"

HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "Standard Webhooks headers: verify webhook-signature over the raw body, deduplicate on webhook-id",
    "required": ["webhook-id", "webhook-timestamp", "webhook-signature", "webhook-attempt"],
    "properties": {
        "webhook-id": {"type": "string", "pattern": "^evt_[0-9a-f]{32}$",
                       "description": "The event's id: the same on every attempt (deduplicate on it)"},
        "webhook-timestamp": {"type": "string", "pattern": "^[0-9]+$",
                              "description": "When this attempt was signed (Unix seconds)"},
        "webhook-signature": {"type": "string", "pattern": "^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$",
                              "description": "HMAC-SHA256 signatures (v1,<base64>) under the webhook secret"},
        "webhook-attempt": {"type": "string", "pattern": "^[1-9][0-9]*$",
                            "description": "Which delivery attempt this is: 1, 2, …"},
    },
}


def _schema_name(event_type: str) -> str:
    return PUBLIC_EVENT_MODELS[event_type].__name__ + "Webhook"


def _body_schema(event_type: str) -> dict[str, Any]:
    """The webhook body of ``event_type``: its type, when the event was made, and its data."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["type", "timestamp", "data"],
        "properties": {
            "type": {"type": "string", "const": event_type},
            "timestamp": {"type": "string", "format": "date-time", "pattern": UTC_TIME_PATTERN,
                          "description": "When the event was made (UTC); the same on every attempt"},
            "data": {"$ref": COMPONENTS + PUBLIC_EVENT_MODELS[event_type].__name__},
        },
    }


def _message(event_type: str, example: dict[str, Any]) -> dict[str, Any]:
    model = PUBLIC_EVENT_MODELS[event_type]
    return {
        "name": event_type,
        "title": event_type,
        "summary": model.__doc__,
        "contentType": "application/json",
        "headers": {"$ref": COMPONENTS + "WebhookHeaders"},
        "payload": {"$ref": COMPONENTS + _schema_name(event_type)},
        "examples": [{"name": event_type.replace(".", "_"), "payload": {
            "type": event_type, "timestamp": "2026-11-22T10:05:00Z", "data": example}}],
    }


def _servers(webhook_url: str | None) -> dict[str, Any]:
    if not webhook_url:
        return {}
    url = urllib.parse.urlsplit(webhook_url)
    return {"servers": {"accountService": {
        "host": url.netloc, "protocol": url.scheme, "pathname": url.path or "/",
        "description": "The account service's webhook endpoint (VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL)"}}}


@functools.lru_cache(maxsize=8)  # one per configured URL: the models do not change while the process runs
def asyncapi_document(webhook_url: str | None, version: str) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document; ``webhook_url`` is where the events go (unset: no server is named)."""
    _, defs = models_json_schema([(model, "validation") for model in PUBLIC_EVENT_MODELS.values()],
                                 ref_template=COMPONENTS + "{model}")
    schemas: dict[str, Any] = dict(defs["$defs"])
    schemas["WebhookHeaders"] = HEADERS
    schemas.update({_schema_name(t): _body_schema(t) for t in PUBLIC_EVENT_MODELS})
    found = examples()
    messages = {t: _message(t, found[t]) for t in PUBLIC_EVENT_MODELS}
    channel = f"#/channels/{CHANNEL}"
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "verify-service events", "version": version,
                 "description": "Signed webhooks (Standard Webhooks) that verify-service sends to the account "
                                "service. Every event's data carries account_id and seq (1, 2, 3 … per account, "
                                "no gaps); an account's events arrive in seq order, at least once."},
        "defaultContentType": "application/json",
        **_servers(webhook_url),
        "channels": {CHANNEL: {
            "address": urllib.parse.urlsplit(webhook_url).path if webhook_url else None,
            "title": "The account service's webhook endpoint",
            "description": "POST, one event per request, to VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL",
            **({"servers": [{"$ref": "#/servers/accountService"}]} if webhook_url else {}),
            "messages": {t: {"$ref": f"#/components/messages/{t}"} for t in messages},
        }},
        "operations": {"send": {
            "action": "send",
            "title": "Send an event to the account service",
            "channel": {"$ref": channel},
            "messages": [{"$ref": f"{channel}/messages/{t}"} for t in messages],
        }},
        "components": {"schemas": schemas, "messages": messages},
    }


def payload_schemas(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each message's payload schema in ``document``, by event type (the references are resolved against it)."""
    return {t: message["payload"] for t, message in document["components"]["messages"].items()}
