"""Google Workspace Events for Meet: subscriptions per host user, and the CloudEvents they deliver
through a Cloud Pub/Sub push — the interface, its types and the wire format.

A host user's subscription targets the user (``//cloudidentity.googleapis.com/users/{id}``), so it
covers every space the user owns, and delivers :data:`MEET_EVENT_TYPES` to a Pub/Sub topic. Pub/Sub
pushes each message to ``POST /webhooks/google/meet-events`` with an OIDC token
(``verify_service/meet_events/``). The events name resources only (a conference record, a
participant session); the service reads what it needs from the Meet API once.

The real gateway is :mod:`integrations.meet_events_adapter` (googleapiclient, Workspace Events v1);
the sandbox (:mod:`integrations.sandbox_google`) serves the same API and pushes the same messages,
signed with its own key.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from integrations.google_meet import parse_time

CONFERENCE_STARTED = "google.workspace.meet.conference.v2.started"
CONFERENCE_ENDED = "google.workspace.meet.conference.v2.ended"
PARTICIPANT_JOINED = "google.workspace.meet.participant.v2.joined"
PARTICIPANT_LEFT = "google.workspace.meet.participant.v2.left"
MEET_EVENT_TYPES = (CONFERENCE_STARTED, CONFERENCE_ENDED, PARTICIPANT_JOINED, PARTICIPANT_LEFT)
# Lifecycle events every subscription also delivers (their data is {"subscription": {...}}).
EXPIRATION_REMINDER = "google.workspace.events.subscription.v1.expirationReminder"
SUSPENDED = "google.workspace.events.subscription.v1.suspended"
EXPIRED = "google.workspace.events.subscription.v1.expired"
LIFECYCLE_EVENT_TYPES = (EXPIRATION_REMINDER, SUSPENDED, EXPIRED)
# The longest a Meet subscription lives without resource data; it is renewed well before.
SUBSCRIPTION_TTL = dt.timedelta(days=7)
# The OAuth scopes the host users' delegation needs for events, beside integrations.google_meet.SCOPES:
# reading the spaces' events (and conference records), and the user's own id (OpenID userinfo "sub").
SCOPE_MEET_READONLY = "https://www.googleapis.com/auth/meetings.space.readonly"
SCOPE_OPENID = "openid"
EVENT_SCOPES = (SCOPE_MEET_READONLY, SCOPE_OPENID)
# Who signs Pub/Sub's push tokens, as the token's "iss" says it.
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")


def user_target(user: str) -> str:
    """The subscription target of a Meet user (``users/{id}``, as a participant's ``signedinUser.user``)."""
    return "//cloudidentity.googleapis.com/" + user


# ---------------------------------------------------------------- subscriptions

@dataclasses.dataclass(frozen=True)
class Subscription:
    name: str                        # "subscriptions/{id}"
    target: str                      # "//cloudidentity.googleapis.com/users/{id}"
    event_types: tuple[str, ...]
    topic: str                       # "projects/{p}/topics/{t}"
    state: str                       # ACTIVE | SUSPENDED | DELETED
    expire_time: dt.datetime | None
    suspension_reason: str | None = None


def subscription_from_api(resource: Mapping[str, Any]) -> Subscription:
    """A ``Subscription`` resource as Workspace Events v1 returns it."""
    expire = resource.get("expireTime")
    return Subscription(
        name=resource["name"], target=resource.get("targetResource", ""),
        event_types=tuple(resource.get("eventTypes") or ()),
        topic=(resource.get("notificationEndpoint") or {}).get("pubsubTopic", ""),
        state=resource.get("state") or "STATE_UNSPECIFIED",
        expire_time=parse_time(expire) if expire else None,
        suspension_reason=resource.get("suspensionReason") or None)


@runtime_checkable
class MeetEventsGateway(Protocol):
    """What the service needs from the Workspace Events API, acting as each host user.

    Every method raises :class:`~integrations.google_meet.MeetError` (or a subclass:
    ``MeetNotFound`` for a subscription that is gone, ``MeetConfigurationError`` for missing scopes
    or delegation) and nothing else.
    """

    def user_of(self, host: str) -> str:
        """The host's Meet user (``users/{id}``: the OpenID ``sub`` of its delegated credentials)."""
        ...

    def create_subscription(self, *, host: str, user: str, topic: str,
                            ttl: dt.timedelta = SUBSCRIPTION_TTL) -> Subscription:
        """Subscribe ``topic`` to ``MEET_EVENT_TYPES`` of every space ``user`` owns.

        ``ALREADY_EXISTS`` (the same target, types and topic) returns the existing subscription.
        """
        ...

    def get_subscription(self, name: str, *, host: str) -> Subscription:
        """The subscription as Google keeps it. Raises: MeetNotFound when it was deleted or expired."""
        ...

    def renew_subscription(self, name: str, *, host: str, ttl: dt.timedelta = SUBSCRIPTION_TTL) -> Subscription:
        """Extend its life to ``ttl`` from now (``subscriptions.patch``, ``updateMask=ttl``)."""
        ...

    def reactivate_subscription(self, name: str, *, host: str) -> Subscription:
        """Make a suspended subscription active again (once what suspended it is fixed)."""
        ...

    def delete_subscription(self, name: str, *, host: str) -> None:
        """Delete it; one already gone counts as done."""
        ...


# ---------------------------------------------------------------- the push (Pub/Sub, CloudEvents binary mode)

class BadPush(ValueError):
    """A push body that is not a Pub/Sub message carrying a CloudEvent; the message says what is wrong."""


@dataclasses.dataclass(frozen=True)
class CloudEvent:
    id: str
    type: str
    source: str                      # "//workspaceevents.googleapis.com/subscriptions/{id}"
    subject: str                     # the resource the subscription targets
    time: dt.datetime
    data: dict[str, Any]

    @property
    def subscription(self) -> str | None:
        """The subscription that delivered the event (``subscriptions/{id}``), from its source."""
        prefix = "//workspaceevents.googleapis.com/"
        return self.source[len(prefix):] if self.source.startswith(prefix + "subscriptions/") else None

    def resource_name(self) -> str | None:
        """The Meet resource the event is about: a conference record or a participant session."""
        for key in ("participantSession", "conferenceRecord"):
            value = self.data.get(key)
            if isinstance(value, dict) and isinstance(value.get("name"), str):
                return str(value["name"])
        return None


def push_body(event: CloudEvent, *, message_id: str, push_subscription: str,
              publish_time: dt.datetime) -> dict[str, Any]:
    """The JSON body Pub/Sub pushes for ``event`` (its attributes prefixed ``ce-``, the data base64)."""
    def rfc3339(value: dt.datetime) -> str:
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")

    attributes = {"ce-id": event.id, "ce-type": event.type, "ce-source": event.source,
                  "ce-subject": event.subject, "ce-time": rfc3339(event.time), "ce-specversion": "1.0",
                  "ce-datacontenttype": "application/json"}
    data = base64.b64encode(json.dumps(event.data, separators=(",", ":")).encode()).decode()
    return {"message": {"attributes": attributes, "data": data, "messageId": message_id,
                        "publishTime": rfc3339(publish_time)},
            "subscription": push_subscription}


def event_from_push(body: Any) -> CloudEvent:
    """The CloudEvent a Pub/Sub push body carries.

    Raises:
        BadPush: not a push body, no ``ce-`` attributes, or data that is not base64 JSON.
    """
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict):
        raise BadPush("the body is not a Pub/Sub push: it has no message object")
    attributes = message.get("attributes")
    if not isinstance(attributes, dict):
        raise BadPush("the message has no attributes: a CloudEvent travels in its ce- attributes")
    missing = [f"ce-{name}" for name in ("id", "type", "source", "time", "specversion")
               if not isinstance(attributes.get(f"ce-{name}"), str) or not attributes[f"ce-{name}"]]
    if missing:
        raise BadPush(f"the message lacks the CloudEvent attributes {', '.join(missing)}")
    if attributes["ce-specversion"] != "1.0":
        raise BadPush(f"CloudEvents {attributes['ce-specversion']!r} is not supported (1.0 is)")
    try:
        time = parse_time(attributes["ce-time"])
    except ValueError:
        raise BadPush(f"ce-time {attributes['ce-time']!r} is not an RFC 3339 time") from None
    try:
        data = json.loads(base64.b64decode(message.get("data") or "", validate=True) or b"{}")
    except (binascii.Error, ValueError, TypeError):
        raise BadPush("the message data is not base64-encoded JSON") from None
    if not isinstance(data, dict):
        raise BadPush("the event data is not a JSON object")
    return CloudEvent(id=attributes["ce-id"][:200], type=attributes["ce-type"][:100], source=attributes["ce-source"],
                      subject=str(attributes.get("ce-subject") or ""), time=time, data=data)
