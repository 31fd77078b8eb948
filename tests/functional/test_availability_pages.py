"""The freelancer's pages say what the shifts say, and show every time in one zone: the freelancer's."""

from __future__ import annotations

import datetime as dt
import html

import pytest

from tests.conftest import Api, FakeClock
from tests.functional.test_freelancer_journey import Freelancer, all_calls, gateway  # noqa: F401 (fixture)
from tests.support.fake_meet import FakeMeetGateway
from verify_service.calls import booking
from verify_service.db import unit_of_work
from verify_service.registry import Registry
from verify_service.staff.models import Reviewer, ReviewerShift, Role

UTC = dt.timezone.utc


def freelancer(api: Api, *, timezone: str | None = None) -> Freelancer:
    profile = {"timezone": timezone} if timezone else {}
    assert api.put_account("acc-ana", email="acc-ana@example.com", **profile).status_code in (200, 201)
    assert api.request_verification("acc-ana", {"reason": "new_account", "place_hold": True}).status_code == 201
    return Freelancer(api, "acc-ana")


def add_shift(registry: Registry, starts: dt.datetime, hours: int) -> None:
    with unit_of_work(registry.sessions) as session:
        reviewer = Reviewer(email="rita@example.com", display_name="Rita", role=Role.REVIEWER, password_hash="x",
                            active=True, created_at=registry.now())
        session.add(reviewer)
        session.flush()
        session.add(ReviewerShift(reviewer_id=reviewer.id, starts_at=starts, ends_at=starts + dt.timedelta(hours=hours),
                                  created_by="test", created_at=registry.now()))


def text(response) -> str:
    assert response.status_code == 200
    return html.unescape(response.get_data(as_text=True))


def test_without_shifts_the_pages_say_24_7_and_about_10_minutes(api: Api, gateway: FakeMeetGateway) -> None:
    page = text(freelancer(api).client.get("/verify"))
    assert "Reviewers are available 24/7." in page
    assert "about 10 minutes" in page
    for untrue in ("any time of day", "around the clock", "under 10 minutes", "15 minutes"):
        assert untrue not in page


def test_without_shifts_and_nobody_at_work_lately_the_waiting_room_does_not_guess(api: Api,
                                                                                 gateway: FakeMeetGateway) -> None:
    ana = freelancer(api)
    started = ana.start()
    status = ana.client.get(started.headers["Location"] + "/status").get_json()
    assert (status["reviewers_now"], status["estimate_minutes"], status["reviewers_on"]) == (0, None, True)
    assert "we cannot estimate your wait yet" in status["availability"]
    assert "we cannot estimate your wait yet" in text(ana.client.get(started.headers["Location"]))


def test_with_a_shift_now_the_page_says_until_when_in_the_profiles_zone(api: Api, gateway: FakeMeetGateway,
                                                                        registry: Registry, clock: FakeClock) -> None:
    add_shift(registry, clock() - dt.timedelta(hours=1), 4)  # 08:00–12:00 UTC: 17:30 in Kolkata
    page = text(freelancer(api, timezone="Asia/Calcutta").client.get("/verify"))
    assert "Reviewers are on shift now until today at 17:30 (your time, Asia/Kolkata)." in page
    assert "24/7" not in page and "any time of day" not in page and "Asia/Calcutta" not in page


def test_with_only_a_future_shift_the_pages_say_when_it_starts_and_the_wait_is_not_guessed(
        api: Api, gateway: FakeMeetGateway, registry: Registry, clock: FakeClock) -> None:
    add_shift(registry, dt.datetime(2026, 11, 25, 22, 0, tzinfo=UTC), 8)  # Wednesday night
    ana = freelancer(api)
    page = text(ana.client.get("/verify"))
    next_shift = "The next shift starts Wednesday 25 November at 22:00 (your time, UTC)."
    assert "No reviewer is on shift right now. " + next_shift in page
    assert "24/7" not in page and "any time of day" not in page and "around the clock" not in page

    started = ana.start()
    assert started.status_code == 303
    room = text(ana.client.get(started.headers["Location"]))
    assert next_shift in room
    assert 'id="queue-estimate">–<' in room and "about " not in room.split('id="queue"', 1)[1].split("</dl>")[0]
    status = ana.client.get(started.headers["Location"] + "/status").get_json()
    assert (status["reviewers_now"], status["estimate_minutes"], status["reviewers_on"]) == (0, None, False)
    assert status["next_shift_at"] == "2026-11-25T22:00:00Z" and next_shift in status["availability"]
    assert status["position"] == 1  # the fields the waiting room's script reads are all still there


def test_a_booking_shows_the_same_local_time_on_every_page(api: Api, gateway: FakeMeetGateway, registry: Registry,
                                                           clock: FakeClock) -> None:
    ana = freelancer(api)
    book = text(ana.client.get("/verify/book?tz=Asia/Calcutta"))  # the browser's name for India's zone
    assert "Times are shown in <strong id=\"tz-name\">Asia/Kolkata</strong>." in book
    start = booking.booking_window(now=clock(), settings=registry.settings).first + dt.timedelta(hours=1)
    booked = ana.post("/verify/book", start=start.isoformat(), tz="Asia/Kolkata")
    assert booked.status_code == 303
    when = start.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30)))
    shown = f"{when:%A} {when.day} {when:%B %Y} at {when:%H:%M} (Asia/Kolkata)"
    call_page = text(ana.client.get(booked.headers["Location"]))
    assert shown in call_page and "about 10 minutes" in call_page
    status_page = text(ana.client.get("/verify"))
    assert shown in status_page
    for page in (call_page, status_page):
        assert "UTC" not in page and "Asia/Calcutta" not in page


@pytest.mark.parametrize("garbage", ["Mars/Olympus", "UTC .", "../../etc/passwd", "x" * 300])
def test_a_garbage_time_zone_is_refused_on_the_page_and_the_form_kept(api: Api, gateway: FakeMeetGateway,
                                                                      registry: Registry, clock: FakeClock,
                                                                      garbage: str) -> None:
    ana = freelancer(api)
    page = text(ana.client.get("/verify/book", query_string={"tz": garbage}))
    assert 'role="alert"' in page and "is not a time zone we know" in page
    assert "The times below are in UTC." in page
    assert 'name="start"' in page and "Book this time" in page  # the form is still there
    assert "UTC ." not in page.replace(garbage, "") and "detecting your time zone" not in page

    start = booking.booking_window(now=clock(), settings=registry.settings).first
    refused = ana.post("/verify/book", start=start.isoformat(), tz=garbage)
    assert refused.status_code == 303 and "/verify/book" in refused.headers["Location"]
    again = text(ana.client.get(refused.headers["Location"]))
    assert "is not a time zone we know" in again and "Nothing was booked" in again
    assert all_calls(registry) == []
