"""Real-time attendance in a real browser, as `make run` has it: Meet's events on, the sandbox pushing them.

The freelancer joins the sandbox meeting room; no attendance job runs, yet the waiting room turns
into "You are in the call" within a couple of seconds, and the reviewer's page shows them joined:
the sandbox pushed the join to ``/webhooks/google/meet-events`` over HTTP, with a token signed by its
own key, and the pages (polling the service every second) show what the service now knows.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from integrations.sandbox_google import sandbox_of
from jobs import meet_events as event_jobs
from tests.browser.conftest import LiveServer, chrome_on_windows
from verify_service.calls.models import CallSession
from verify_service.calls.state import SessionStatus

DESKTOP = chrome_on_windows(142)


@pytest.fixture
def events_server(tmp_path: Path, sqlite_template: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path, sqlite_template, meet_events_topic="projects/sandbox/topics/meet-events")
    event_jobs.keep_meet_subscriptions(live.app)  # the scheduler does this at start
    yield live
    live.stop()


def test_the_waiting_room_sees_the_join_without_any_attendance_job(events_server: LiveServer,
                                                                   new_page: Callable[..., Page]) -> None:
    page = new_page(DESKTOP, permissions=["camera", "microphone"])
    page.goto(events_server.freelancer())
    page.get_by_role("button", name="Start a call now").click()
    expect(page.get_by_role("heading", name="Your call is ready")).to_be_visible()
    expect(page.locator("#call")).to_have_attribute("data-poll-seconds", "1")

    with page.context.expect_page() as opened:
        page.get_by_role("link", name=re.compile("Join the call in Google Meet")).click()
    room = opened.value
    form = room.locator("form", has=room.get_by_role("button", name="Join as freelancer"))
    form.get_by_label("Display name").fill("Ana Lima")
    joined = time.monotonic()
    form.get_by_role("button", name="Join as freelancer").click()
    expect(room.get_by_text("joined as freelancer")).to_be_visible()

    expect(page.get_by_role("heading", name="You are in the call")).to_be_visible(timeout=5_000)
    seen = time.monotonic() - joined
    assert sandbox_of(events_server.app).push.flush(timeout=5)
    with events_server.registry.sessions() as session:
        call = session.scalars(sa.select(CallSession)).one()
    assert call.status is SessionStatus.IN_PROGRESS and call.meet_event_at is not None
    assert call.attendance_synced_at is None  # nobody read Meet: the event did it
    assert seen < 5, f"the waiting room took {seen:.1f} s"
