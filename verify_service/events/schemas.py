"""Request and response schemas of the events API; the OpenAPI document is generated from these."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from verify_service.accounts.schemas import ACCOUNT_ID_PATTERN
from verify_service.api.schemas import HeaderModel
from verify_service.events.feed import FEED_TYPES, MAX_LIMIT

EventType = Literal[FEED_TYPES]  # type: ignore[valid-type]  (built from the outbox's own list)


class EventsQuery(HeaderModel):
    """The feed's query. A HeaderModel for its JSON schema built once (as the bulk list's query): flask-openapi3
    asks a query model for it on every request it validates."""

    after: str | None = Field(
        None, min_length=1, max_length=400, pattern=r"^[A-Za-z0-9_-]+$",
        description="The `next_cursor` of the previous page, used with the same `type` and `account_id`. "
                    "Without it the feed starts at its oldest event.")
    limit: int = Field(100, ge=1, le=MAX_LIMIT, description="How many events at most.")
    type: EventType | None = Field(None, description="Only events of this type.")
    account_id: str | None = Field(None, pattern=ACCOUNT_ID_PATTERN,
                                   description="Only this account's events, in its `seq` order.")


class EventPath(BaseModel):
    event_id: str = Field(pattern=r"^evt_[0-9a-f]{32}$", description="The event's id (its `webhook-id`).")


class EventOut(BaseModel):
    """The webhook body exactly as it was sent (`type`, `timestamp`, `data`), with the `webhook-id` as `id`."""

    id: str = Field(description="The event's `webhook-id`: deduplicate on it.")
    type: EventType
    timestamp: str = Field(json_schema_extra={"format": "date-time"}, description="When the event was made.")
    data: dict[str, Any] = Field(description="The event's data; always `account_id` and the per-account `seq`.")


class EventsPage(BaseModel):
    data: list[EventOut]
    next_cursor: str = Field(description="Where the next page starts, also after an empty page: poll with it.")
    has_more: bool = Field(description="More events are visible now: ask again at once.")
