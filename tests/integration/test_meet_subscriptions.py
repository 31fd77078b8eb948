"""Keeping one Workspace Events subscription per Meet host user (verify_service/meet_events/subscriptions.py),
on SQLite and PostgreSQL, against the in-memory fake of Google's side; and the jobs that run it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from integrations.google_meet import MeetConfigurationError, MeetError
from integrations.meet_events import (
    EXPIRATION_REMINDER, EXPIRED, PARTICIPANT_JOINED, SUBSCRIPTION_TTL, SUSPENDED, CloudEvent, MeetEventsGateway,
)
from jobs import create_scheduler, meet_events as meet_event_jobs, register_jobs
from tests.conftest import FakeClock, make_settings
from tests.support.fake_meet_events import FakeMeetEventsGateway
from verify_service import create_app
from verify_service.db import unit_of_work
from verify_service.meet_events import subscriptions as subs
from verify_service.meet_events.models import MeetEventReceipt, MeetSubscription
from verify_service.registry import KEY, Registry

HOSTS = ("host-a@corp.example", "host-b@corp.example")
TOPIC = "projects/verify/topics/meet-events"
OTHER_TOPIC = "projects/verify/topics/meet-events-2"


@pytest.fixture
def google(clock: FakeClock) -> FakeMeetEventsGateway:
    return FakeMeetEventsGateway(clock)


def keep(sessions: sessionmaker[Session], google: FakeMeetEventsGateway, clock: FakeClock, *,
         hosts: tuple[str, ...] = HOSTS, topic: str = TOPIC, **options: object) -> subs.KeepResult:
    return subs.keep_subscriptions(sessions, google, hosts=hosts, topic=topic, now=clock(), **options)


def rows(sessions: sessionmaker[Session]) -> dict[str, MeetSubscription]:
    with sessions() as db:
        return {row.host: row for row in db.scalars(sa.select(MeetSubscription)).all()}


def test_the_fake_keeps_the_gateways_contract(google: FakeMeetEventsGateway) -> None:
    assert isinstance(google, MeetEventsGateway)


def test_the_first_run_creates_one_subscription_per_host_and_the_next_changes_nothing(sessions, google, clock) -> None:
    assert keep(sessions, google, clock) == subs.KeepResult(created=2)
    kept = rows(sessions)
    assert set(kept) == set(HOSTS)
    for host, row in kept.items():
        [at_google] = google.of_host(host)
        assert row.name == at_google.name and row.state == "ACTIVE" and row.user == google.users[host]
        assert at_google.target == "//cloudidentity.googleapis.com/" + row.user and at_google.topic == TOPIC
        assert row.expire_time == clock() + SUBSCRIPTION_TTL and row.problem is None
        assert row.checked_at == row.updated_at == clock()
    clock.advance(minutes=10)
    google.calls.clear()
    assert keep(sessions, google, clock) == subs.KeepResult()
    assert sorted(method for method, _ in google.calls) == ["get_subscription", "get_subscription"]
    again = rows(sessions)
    assert all(row.checked_at == clock() and row.updated_at == clock() - dt.timedelta(minutes=10)
               for row in again.values())
    with sessions() as db:
        assert subs.live_hosts(db, clock()) == set(HOSTS)
        assert subs.hosts_without_live_subscription(db, HOSTS, clock()) == {}


def test_a_lost_row_finds_the_existing_subscription_through_already_exists(sessions, google, clock) -> None:
    keep(sessions, google, clock)
    name = rows(sessions)[HOSTS[0]].name
    with unit_of_work(sessions) as db:
        db.execute(sa.delete(MeetSubscription).where(MeetSubscription.host == HOSTS[0]))
    assert keep(sessions, google, clock) == subs.KeepResult(created=1)
    assert google.already_existed == 1 and len(google.of_host(HOSTS[0])) == 1
    assert rows(sessions)[HOSTS[0]].name == name


def test_renews_only_when_less_than_a_day_is_left(sessions, google, clock) -> None:
    keep(sessions, google, clock)
    clock.advance(days=5, hours=23)
    assert keep(sessions, google, clock).renewed == 0
    clock.advance(hours=1, seconds=1)  # 23 h 59 min 59 s left
    assert keep(sessions, google, clock) == subs.KeepResult(renewed=2)
    assert {row.expire_time for row in rows(sessions).values()} == {clock() + SUBSCRIPTION_TTL}
    assert "renew_subscription" in google.methods(HOSTS[0])
    assert keep(sessions, google, clock).renewed == 0
    # A larger margin (the caller's choice) renews earlier.
    assert keep(sessions, google, clock, renew_before=dt.timedelta(days=8)).renewed == 2


def test_a_subscription_gone_at_google_is_created_again(sessions, google, clock) -> None:
    keep(sessions, google, clock)
    old = rows(sessions)[HOSTS[1]].name
    google.lose(old)
    clock.advance(hours=1)
    assert keep(sessions, google, clock) == subs.KeepResult(recreated=1)
    row = rows(sessions)[HOSTS[1]]
    assert row.name != old and row.name == google.of_host(HOSTS[1])[0].name and row.state == "ACTIVE"
    assert row.expire_time == clock() + SUBSCRIPTION_TTL


def test_a_suspended_subscription_is_reactivated(sessions, google, clock) -> None:
    keep(sessions, google, clock)
    name = rows(sessions)[HOSTS[0]].name
    google.suspend(name, "USER_SCOPE_REVOKED")
    assert keep(sessions, google, clock) == subs.KeepResult(reactivated=1)
    row = rows(sessions)[HOSTS[0]]
    assert (row.name, row.state, row.suspension_reason, row.problem) == (name, "ACTIVE", None, None)


def test_a_refused_reactivation_leaves_advice_and_the_other_hosts_are_still_kept(sessions, google, clock) -> None:
    keep(sessions, google, clock)
    first, second = (rows(sessions)[host].name for host in HOSTS)
    google.suspend(first, "ENDPOINT_PERMISSION_DENIED")
    google.fail_next("reactivate_subscription", MeetError("403 the topic refuses the push account"))
    google.lose(second)
    assert keep(sessions, google, clock) == subs.KeepResult(recreated=1, failed=1)
    kept = rows(sessions)
    row = kept[HOSTS[0]]
    assert (row.state, row.suspension_reason) == ("SUSPENDED", "ENDPOINT_PERMISSION_DENIED")
    assert subs.PUSH_PUBLISHER in row.problem and "roles/pubsub.publisher" in row.problem and TOPIC in row.problem
    assert "403 the topic refuses the push account" in row.problem
    assert kept[HOSTS[1]].state == "ACTIVE" and kept[HOSTS[1]].problem is None
    with sessions() as db:
        assert subs.live_hosts(db, clock()) == {HOSTS[1]}
        why = subs.hosts_without_live_subscription(db, HOSTS, clock(), topic=TOPIC)
    assert set(why) == {HOSTS[0]} and "state SUSPENDED" in why[HOSTS[0]] and subs.PUSH_PUBLISHER in why[HOSTS[0]]
    # The role granted, the next run lifts the suspension and clears the problem.
    assert keep(sessions, google, clock) == subs.KeepResult(reactivated=1)
    assert rows(sessions)[HOSTS[0]].problem is None


def test_one_hosts_configuration_error_never_stops_the_others(sessions, google, clock) -> None:
    google.fail_next("user_of", MeetConfigurationError("unauthorized_client: delegation is missing"))
    assert keep(sessions, google, clock) == subs.KeepResult(created=1, failed=1)
    failing, working = rows(sessions)[HOSTS[0]], rows(sessions)[HOSTS[1]]
    assert failing.state == "MISSING" and failing.name is None and "delegation is missing" in failing.problem
    assert failing.checked_at == clock() and working.state == "ACTIVE"
    with sessions() as db:
        why = subs.hosts_without_live_subscription(db, HOSTS, clock())
    assert list(why) == [HOSTS[0]] and "delegation is missing" in why[HOSTS[0]]
    assert keep(sessions, google, clock) == subs.KeepResult(created=1)
    assert rows(sessions)[HOSTS[0]].problem is None


@pytest.mark.parametrize(("reason", "words"), [
    ("ENDPOINT_PERMISSION_DENIED", "meet-api-event-push@system.gserviceaccount.com"),
    ("USER_SCOPE_REVOKED", "delegation"),
    ("USER_AUTHORIZATION_FAILURE", "delegation"),
    ("RESOURCE_DELETED", "VERIFY_MEET_HOST_USERS"),
    ("ENDPOINT_NOT_FOUND", "no longer exists"),
    ("ENDPOINT_RESOURCE_EXHAUSTED", "ENDPOINT_RESOURCE_EXHAUSTED"),
])
def test_every_suspension_reason_says_what_to_do(reason: str, words: str) -> None:
    assert words in subs.suspension_advice(reason, TOPIC)


def test_a_new_topic_replaces_every_subscription(sessions, google, clock) -> None:
    keep(sessions, google, clock)
    old = {host: row.name for host, row in rows(sessions).items()}
    assert keep(sessions, google, clock, topic=OTHER_TOPIC) == subs.KeepResult(recreated=2)
    for host, row in rows(sessions).items():
        [at_google] = google.of_host(host)  # the old one was deleted
        assert at_google.topic == OTHER_TOPIC and row.name == at_google.name != old[host]
    assert google.methods(HOSTS[0]).count("delete_subscription") == 1


def test_a_host_no_longer_configured_loses_its_row_and_its_subscription(sessions, google, clock) -> None:
    keep(sessions, google, clock)
    assert keep(sessions, google, clock, hosts=HOSTS[1:]) == subs.KeepResult(removed=1)
    assert set(rows(sessions)) == {HOSTS[1]} and google.of_host(HOSTS[0]) == []
    # Google refusing the deletion (the host's delegation is gone too) still removes the row.
    keep(sessions, google, clock)
    google.fail_next("delete_subscription", MeetConfigurationError("the host is suspended"))
    assert keep(sessions, google, clock, hosts=HOSTS[:1]).removed == 1
    assert set(rows(sessions)) == {HOSTS[0]}


# ---------------------------------------------------------------- lifecycle events

def lifecycle(kind: str, name: str, clock: FakeClock, **subscription: object) -> CloudEvent:
    source = "//workspaceevents.googleapis.com/" + name
    return CloudEvent(id=f"evt-{kind}", type=kind, source=source, subject=source, time=clock(),
                      data={"subscription": {"name": name, **subscription}})


def apply(sessions: sessionmaker[Session], event: CloudEvent, clock: FakeClock) -> str | None:
    with unit_of_work(sessions) as db:
        return subs.apply_lifecycle(db, event, clock())


def test_a_suspension_event_marks_the_row_and_keeping_its_host_reactivates(sessions, google, clock) -> None:
    keep(sessions, google, clock)
    name = rows(sessions)[HOSTS[0]].name
    google.suspend(name, "USER_AUTHORIZATION_FAILURE")
    clock.advance(minutes=1)
    # Google's own example spells the reason in snake case.
    event = lifecycle(SUSPENDED, name, clock, suspension_reason="USER_AUTHORIZATION_FAILURE", state="SUSPENDED")
    assert apply(sessions, event, clock) == HOSTS[0]
    row = rows(sessions)[HOSTS[0]]
    assert (row.state, row.suspension_reason, row.updated_at) == ("SUSPENDED", "USER_AUTHORIZATION_FAILURE", clock())
    with sessions() as db:
        assert "delegation" in subs.hosts_without_live_subscription(db, HOSTS, clock())[HOSTS[0]]
    google.calls.clear()
    assert keep(sessions, google, clock, only=[HOSTS[0]]) == subs.KeepResult(reactivated=1)
    assert google.methods(HOSTS[1]) == [] and rows(sessions)[HOSTS[0]].state == "ACTIVE"


def test_an_expired_event_clears_the_name_and_keeping_creates_a_new_one(sessions, google, clock) -> None:
    keep(sessions, google, clock)
    name = rows(sessions)[HOSTS[1]].name
    google.lose(name)
    assert apply(sessions, lifecycle(EXPIRED, name, clock), clock) == HOSTS[1]
    row = rows(sessions)[HOSTS[1]]
    assert (row.state, row.name, row.expire_time) == ("MISSING", None, None)
    assert keep(sessions, google, clock, only=[HOSTS[1]]) == subs.KeepResult(created=1)
    assert rows(sessions)[HOSTS[1]].name == google.of_host(HOSTS[1])[0].name


def test_an_expiration_reminder_records_the_end_and_the_renewal_is_due(sessions, google, clock) -> None:
    keep(sessions, google, clock)
    name = rows(sessions)[HOSTS[0]].name
    clock.advance(days=6, hours=12)  # Google reminds 12 hours before the end
    end = clock() + dt.timedelta(hours=12)
    google.expire(name, end)
    event = lifecycle(EXPIRATION_REMINDER, name, clock, expireTime=end.isoformat().replace("+00:00", "Z"))
    assert apply(sessions, event, clock) == HOSTS[0]
    assert rows(sessions)[HOSTS[0]].expire_time == end
    assert keep(sessions, google, clock, only=[HOSTS[0]]) == subs.KeepResult(renewed=1)
    assert rows(sessions)[HOSTS[0]].expire_time == clock() + SUBSCRIPTION_TTL


def test_events_of_unknown_subscriptions_or_other_types_change_nothing(sessions, google, clock) -> None:
    keep(sessions, google, clock)
    name = rows(sessions)[HOSTS[0]].name
    before = {host: (row.state, row.name, row.updated_at) for host, row in rows(sessions).items()}
    clock.advance(minutes=1)
    assert apply(sessions, lifecycle(SUSPENDED, "subscriptions/replaced-long-ago", clock), clock) is None
    assert apply(sessions, lifecycle(PARTICIPANT_JOINED, name, clock), clock) is None
    not_ours = CloudEvent(id="x", type=EXPIRED, source="//example.invalid/" + name, subject="", time=clock(), data={})
    assert apply(sessions, not_ours, clock) is None
    assert {host: (row.state, row.name, row.updated_at) for host, row in rows(sessions).items()} == before
    # Data that is no subscription still suspends the row the source names (no reason known).
    malformed = CloudEvent(id="y", type=SUSPENDED, source="//workspaceevents.googleapis.com/" + name, subject="",
                           time=clock(), data={"subscription": "nonsense"})
    assert apply(sessions, malformed, clock) == HOSTS[0]
    assert rows(sessions)[HOSTS[0]].state == "SUSPENDED"
    with sessions() as db:
        assert "no reason given" in subs.hosts_without_live_subscription(db, HOSTS, clock())[HOSTS[0]]


# ---------------------------------------------------------------- the jobs

@pytest.fixture
def events_app(database_url: str, tmp_path: Path, clock: FakeClock, google: FakeMeetEventsGateway) -> Iterator[Flask]:
    app = create_app(make_settings(database_url, tmp_path, meet_events_topic=TOPIC, meet_host_users=HOSTS))
    registry: Registry = app.extensions[KEY]
    registry.clock, registry.meet_events = clock, google
    yield app
    registry.engine.dispose()


def test_the_meet_event_jobs_run_only_with_events_configured(app: Flask, events_app: Flask) -> None:
    for each, expected in ((app, set()), (events_app, {"keep_meet_subscriptions", "drain_meet_events",
                                                       "purge_meet_event_receipts"})):
        scheduler = create_scheduler(background=True)
        register_jobs(scheduler, each, catch_up=True)
        started = dt.datetime.now(dt.timezone.utc)
        scheduler.start(paused=True)
        try:
            jobs = {job.id: job for job in scheduler.get_jobs()}
        finally:
            scheduler.shutdown(wait=False)
        assert set(jobs) & {"keep_meet_subscriptions", "drain_meet_events", "purge_meet_event_receipts"} == expected
    keeper = jobs["keep_meet_subscriptions"]
    assert isinstance(keeper.trigger, IntervalTrigger) and keeper.trigger.interval == dt.timedelta(minutes=10)
    assert (keeper.next_run_time - started).total_seconds() < 1  # at once when a scheduler takes the lead
    assert (jobs["purge_meet_event_receipts"].next_run_time - started).total_seconds() > 1  # a time of day


def test_the_keep_job_uses_the_registrys_gateway_and_notes_when_it_cannot_be_built(
        events_app: Flask, google: FakeMeetEventsGateway) -> None:
    registry: Registry = events_app.extensions[KEY]
    assert meet_event_jobs.keep_meet_subscriptions(events_app) == subs.KeepResult(created=2)
    registry.meet_events = None
    broken = MeetConfigurationError("VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE is not set")

    def refuse(_registry: Registry) -> MeetEventsGateway:
        raise broken

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(meet_event_jobs, "events_gateway", refuse)
        with pytest.raises(MeetConfigurationError):
            meet_event_jobs.keep_meet_subscriptions(events_app)
    assert all("VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE" in row.problem for row in rows(registry.sessions).values())


def test_the_purge_forgets_only_receipts_older_than_eight_days(events_app: Flask, clock: FakeClock) -> None:
    registry: Registry = events_app.extensions[KEY]
    ages = {"old": dt.timedelta(days=8, seconds=1), "edge": dt.timedelta(days=8), "week": dt.timedelta(days=7),
            "new": dt.timedelta(0)}
    with unit_of_work(registry.sessions) as db:
        db.add_all(MeetEventReceipt(id=key, type=PARTICIPANT_JOINED, received_at=clock() - age)
                   for key, age in ages.items())
    assert meet_event_jobs.purge_meet_event_receipts(events_app) == 1
    with registry.sessions() as db:
        assert set(db.scalars(sa.select(MeetEventReceipt.id))) == {"edge", "week", "new"}
    assert meet_event_jobs.purge_meet_event_receipts(events_app) == 0
