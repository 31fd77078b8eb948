"""Staff pages speak in labels, never in codes, and show user-supplied names isolated (both backends).

Every page a lead can open is rendered with data that fills it (a waiting call, a fail waiting for its second
review with reasons and a national ID card, a manual hold, an empty shift plan, a refusal); the visible text
must hold no snake_case code. ``<code>`` elements are what they say: identifiers shown as stored (event types,
audit actions, account ids).
"""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from flask import Flask

from tests.conftest import Api, FakeClock
from tests.support.fake_meet import FakeMeetGateway
from tests.support.review_desk import attend, page_text, staff, waiting
from tests.support.staff import staff_member
from verify_service.registry import Registry
from verify_service.staff.models import Role

SNAKE = re.compile(r"\b[a-z]+_[a-z0-9_]+\b")
HIDDEN = re.compile(r"<(script|style|code|title)\b.*?</\1>", re.S)
TAG = re.compile(r"<[^>]+>")
SPOOFED = "Ana \u202eamiL"  # shows as "Ana Lima" reversed unless isolated and marked


@pytest.fixture
def gateway(registry: Registry) -> FakeMeetGateway:
    registry.meet = FakeMeetGateway()
    return registry.meet


def visible_text(page: str) -> str:
    return html.unescape(TAG.sub(" ", HIDDEN.sub(" ", page)))


def raw_codes(page: str) -> list[str]:
    return sorted(set(SNAKE.findall(visible_text(page))))


def filled_dashboard(app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway) -> tuple[str, str]:
    """A waiting call of a spoofed name, and a fail (reasons, a national ID card) waiting for a lead."""
    waiting_id = waiting(api, registry, gateway, "acc-wait", name=SPOOFED)
    failed_id = waiting(api, registry, gateway, "acc-fail", name="Bo Chen")
    desk = staff(app, registry)
    desk.claim(failed_id)
    attend(registry, failed_id, reviewer=desk.reviewer)
    assert desk.record_id(failed_id, "X1234567", doc_type="national_id").status_code == 303
    assert desk.decide(failed_id, "failed", reasons=("document_expired", "profile_mismatch")).status_code == 303
    return waiting_id, failed_id


def test_no_staff_page_shows_a_raw_code(app: Flask, api: Api, registry: Registry, gateway: FakeMeetGateway) -> None:
    waiting_id, failed_id = filled_dashboard(app, api, registry, gateway)
    lead = staff(app, registry, Role.LEAD)
    assert lead.post("/review/lead/accounts/acc-fail/holds",
                     {"blocks": ["withdraw_earnings", "appear_in_search"], "reason": "Chargeback"}).status_code == 303
    pages = ["/review", "/review/mine", f"/review/sessions/{waiting_id}", f"/review/sessions/{failed_id}",
             "/review/second-reviews", "/review/quality", "/review/lead/accounts", "/review/lead/accounts/acc-fail",
             "/review/lead/deliveries", "/review/lead/shifts", "/review/lead/reviewers", "/review/lead/metrics",
             "/review/account"]
    found = {}
    for path in pages:
        response = lead.get(path)
        assert response.status_code == 200, path
        found[path] = raw_codes(page_text(response))
    assert not {path: codes for path, codes in found.items() if codes}
    session = visible_text(page_text(lead.get(f"/review/sessions/{failed_id}")))
    assert "National ID card" in session and "The ID has expired" in session
    assert "Fail waiting for a lead's review" in session


def test_a_refusal_names_the_problem_in_words(app: Flask, api: Api, registry: Registry,
                                              gateway: FakeMeetGateway) -> None:
    call_id = waiting(api, registry, gateway, "acc-1")
    staff(app, registry, email="first@example.com").claim(call_id)
    other = staff(app, registry, email="other@example.com")
    refused = other.decide(call_id, "failed", reasons=("poor_video",))
    assert refused.status_code == 403
    text = visible_text(page_text(refused))
    assert not raw_codes(page_text(refused)) and "Error code" not in text
    missing_reason = staff(app, registry, email="first@example.com").decide(call_id, "failed")
    assert missing_reason.status_code == 422
    assert "choose at least one reason: a fail must say why" in page_text(missing_reason)


def test_names_are_isolated_and_their_direction_controls_shown(app: Flask, api: Api, registry: Registry,
                                                               gateway: FakeMeetGateway) -> None:
    call_id = waiting(api, registry, gateway, "acc-1", name=SPOOFED)
    desk = staff(app, registry)
    queue = page_text(desk.get("/review"))
    assert '<bdi class="person">Ana <span class="bidi-mark"' in queue and "\u202e" not in queue
    desk.claim(call_id)
    session = page_text(desk.get(f"/review/sessions/{call_id}"))
    title = re.search(r"<title>(.*?)</title>", session, re.S)
    assert title and "Call with Ana ⟨U+202E⟩amiL" in html.unescape(title.group(1))
    assert "\u202e" not in session
    mine = page_text(desk.get("/review/mine"))
    assert "⟨U+202E⟩" in mine and "\u202e" not in mine


def test_a_lead_notice_isolates_the_name_it_names(app: Flask, registry: Registry) -> None:
    """The notice after a lead's action names the person: isolated and marked, as in the tables."""
    spoofed = staff_member(registry, email="spoof@example.com", name=SPOOFED)
    lead = staff(app, registry, role=Role.LEAD)
    done = lead.post(f"/review/lead/reviewers/{spoofed.id}/disable", follow_redirects=True)
    assert done.status_code == 200
    page = page_text(done)
    assert '<bdi class="person">Ana <span class="bidi-mark"' in page and "is disabled; their sessions have ended" in page
    assert "\u202e" not in page and "&lt;bdi" not in page  # markup, not escaped text


def test_the_session_page_says_what_a_pass_still_needs(app: Flask, api: Api, registry: Registry,
                                                       gateway: FakeMeetGateway) -> None:
    call_id = waiting(api, registry, gateway, "acc-1")
    desk = staff(app, registry)
    desk.claim(call_id)
    fresh = visible_text(page_text(desk.get(f"/review/sessions/{call_id}")))
    checks = len(registry.settings.checklist)
    assert f"0 of {checks} checks done" in fresh
    assert "The freelancer seen in the Meet call" in fresh and "Record the ID document" in fresh
    assert f"{checks} checklist items not ticked" in fresh
    # Without the page's script the server refuses the pass and lists the same (and keeps the ticks).
    refused = desk.decide(call_id, "passed", checklist=(0, 1))
    assert refused.status_code == 422
    text = visible_text(page_text(refused))
    assert f"2 of {checks} checks done" in text and "Confirm every checklist item" in text
    attend(registry, call_id)
    assert desk.record_id(call_id, "P1234567").status_code == 303
    ready = visible_text(page_text(desk.get(f"/review/sessions/{call_id}")))
    assert "Record the ID document" not in ready  # attendance counts as Meet reports it at the decision


def test_ask_a_lead_says_what_a_lead_can_do_and_the_reviewers_page_when_each_link_expires(
        app: Flask, registry: Registry, clock: FakeClock) -> None:
    hours = registry.settings.staff_invite_hours
    sign_in = visible_text(page_text(app.test_client().get("/review/sign-in")))
    assert "Ask a lead" in sign_in and "Reset password" in sign_in and "Reset two-step" in sign_in
    assert f"single-use link that works for {hours} hours" in " ".join(sign_in.split())
    rita = staff(app, registry, email="rita@example.com")
    assert "Reset two-step" in visible_text(page_text(rita.get("/review/account")))
    lead = staff(app, registry, Role.LEAD)
    assert lead.post(f"/review/lead/reviewers/{rita.reviewer.id}/password/reset").status_code == 303
    until = (registry.now() + dt.timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M UTC")
    page = " ".join(visible_text(page_text(lead.get("/review/lead/reviewers"))).split())
    assert f"Password reset: works once, until {until}" in page
    clock.advance(hours=hours + 1)
    lead = staff(app, registry, Role.LEAD)  # the earlier session has ended by now
    page = " ".join(visible_text(page_text(lead.get("/review/lead/reviewers"))).split())
    assert f"Password reset: expired {until}, unused" in page
