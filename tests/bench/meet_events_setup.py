"""What bench_meet_events.py stands on: the seeded calls, an instant Meet, a push key of its own, the events.

Call ``n`` (1 … calls) belongs to account ``mev-<n>`` (one open verification request), waits in
space ``spaces/b-<n>`` hosted by ``mev-host-<n mod hosts>@bench.invalid`` (each host with an
ACTIVE Workspace Events subscription ``subscriptions/mev-sub-<h>``), and its conference
``conferenceRecords/c-<n>`` has two participants: the freelancer (``…/participants/f``, signed in
as ``users/mev-f-<n>``) and a reviewer (``…/participants/r``, signed in as one of the seeded
reviewers, whose Google user the service already knows). Each has one participant session
(``…/participantSessions/1``).
"""

from __future__ import annotations

import cProfile
import dataclasses
import datetime as dt
import io
import json
import pstats
import sys
import threading
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt, jwt

from integrations.google_meet import (
    ConferenceAttendance, ConferenceRecord, MeetError, MeetNotFound, Participant, ParticipantSession,
)
from integrations.meet_events import (
    CONFERENCE_ENDED, CONFERENCE_STARTED, PARTICIPANT_JOINED, PARTICIPANT_LEFT, CloudEvent, push_body,
)
from tests.bench.bench_restrictions import service_env
from verify_service import create_app
from verify_service.calls.reconciliation import READS_PER_CALL
from verify_service.meet_events.blueprint import VERIFIER
from verify_service.meet_events.tokens import PushVerifier
from verify_service.registry import KEY
from verify_service.settings import MEET_EVENTS_PATH, load_settings

PREFIX = "mev-"
TOPIC = "projects/verify-bench/topics/meet-events"
PUSH_ACCOUNT = "meet-events-push@verify-bench.iam.gserviceaccount.com"
PUSH_SUBSCRIPTION = "projects/verify-bench/subscriptions/meet-events-push"
SOURCE = "//workspaceevents.googleapis.com/subscriptions/"

# When, before the seed's moment S, each thing in a call happened (the events carry these times).
READY_BEFORE = dt.timedelta(minutes=10)
FREELANCER_JOINS = dt.timedelta(minutes=9)      # also the conference's start
REVIEWER_JOINS = dt.timedelta(minutes=8, seconds=30)
FREELANCER_LEAVES = dt.timedelta(minutes=2)
REVIEWER_LEAVES = dt.timedelta(minutes=1)       # also the conference's end


def host_of(n: int, hosts: int) -> str:
    return f"{PREFIX}host-{n % hosts:02d}@bench.invalid"


def record_of(n: int) -> str:
    return f"conferenceRecords/c-{n}"


# ---------------------------------------------------------------- the seed (set-based SQL)

_CALLS = "(SELECT id FROM call_sessions WHERE account_id LIKE %(like)s)"
_RESET_SQL = [  # the previous run's calls and everything the events wrote about them
    *(f"DELETE FROM {table} WHERE call_session_id IN {_CALLS}"
      for table in ("call_participant_sessions", "call_conferences", "call_participants")),
    "DELETE FROM call_sessions WHERE account_id LIKE %(like)s",
    "DELETE FROM outbox_events WHERE account_id LIKE %(like)s",
    "DELETE FROM meet_event_receipts WHERE id LIKE %(like)s",
    "DELETE FROM meet_subscriptions WHERE host LIKE %(like)s",
]
_SEED_SQL = [
    """INSERT INTO accounts (id, display_name, email, country, timezone, locale, verification_status,
                             verification_changed_at, restrictions_version, last_event_seq, created_at, updated_at)
       SELECT %(prefix)s || lpad(i::text, 7, '0'), 'Freelancer ' || i, 'freelancer' || i || '@bench.example', 'DE',
              'UTC', 'en-US', 'required', %(s)s - interval '1 day', 1, 0, %(s)s - interval '30 days', %(s)s
       FROM generate_series(1, %(calls)s) AS i
       ON CONFLICT (id) DO UPDATE SET last_event_seq = 0, closed_at = NULL""",
    """INSERT INTO verification_requests (id, account_id, reason, deadline, place_hold, status, requested_by,
                                          requested_at)
       SELECT md5('mev-request' || i)::uuid::text, %(prefix)s || lpad(i::text, 7, '0'), 'new_account',
              %(s)s + interval '7 days', false, 'open', 'account-service', %(s)s - interval '1 day'
       FROM generate_series(1, %(calls)s) AS i
       ON CONFLICT DO NOTHING""",
    """INSERT INTO reviewers (email, display_name, role, password_hash, google_user, active, created_at)
       SELECT %(prefix)s || 'reviewer-' || r || '@bench.invalid', 'Bench Reviewer ' || r, 'reviewer', 'x',
              'users/mev-r-' || r, true, %(s)s - interval '90 days'
       FROM generate_series(0, %(reviewers)s - 1) AS r
       ON CONFLICT (email) DO NOTHING""",
    """INSERT INTO meet_subscriptions (host, "user", name, state, expire_time, checked_at, updated_at)
       SELECT %(prefix)s || 'host-' || lpad(h::text, 2, '0') || '@bench.invalid', 'users/mev-host-' || h,
              'subscriptions/mev-sub-' || h, 'ACTIVE', %(s)s + interval '6 days', %(s)s, %(s)s
       FROM generate_series(0, %(hosts)s - 1) AS h""",
    """INSERT INTO call_sessions (id, account_id, verification_request_id, status, attempt, meet_space, meet_uri,
                                  meet_code, meet_host, meet_status, meet_ready_at, created_at, updated_at)
       SELECT md5('mev-call' || i)::uuid::text, %(prefix)s || lpad(i::text, 7, '0'),
              md5('mev-request' || i)::uuid::text, 'waiting', 1, 'spaces/b-' || i,
              'https://meet.google.com/b-' || i, 'b-' || i,
              %(prefix)s || 'host-' || lpad((i %% %(hosts)s)::text, 2, '0') || '@bench.invalid', 'ready',
              %(ready)s, %(ready)s + i * interval '1 millisecond', %(ready)s
       FROM generate_series(1, %(calls)s) AS i""",
]


# Phase 2's steady state for every call, whatever phase 1 pushed: in progress, both people still connected.
_STEADY_SQL = [
    """INSERT INTO call_conferences (record, call_session_id, started_at)
       SELECT 'conferenceRecords/c-' || i, md5('mev-call' || i)::uuid::text, %(fj)s FROM generate_series(1, %(calls)s) i
       ON CONFLICT (record) DO UPDATE SET ended_at = NULL""",
    """INSERT INTO call_participants (call_session_id, participant, kind, role, google_user, display_name,
                                      first_joined_at, connected_seconds)
       SELECT md5('mev-call' || i)::uuid::text, 'conferenceRecords/c-' || i || '/participants/' || p, 'signed_in',
              CASE p WHEN 'f' THEN 'freelancer' ELSE 'reviewer' END,
              CASE p WHEN 'f' THEN 'users/mev-f-' || i ELSE 'users/mev-r-' || i %% %(reviewers)s END,
              CASE p WHEN 'f' THEN 'Freelancer ' || i ELSE 'Bench Reviewer ' || i %% %(reviewers)s END,
              CASE p WHEN 'f' THEN %(fj)s ELSE %(rj)s END, 0
       FROM generate_series(1, %(calls)s) i, unnest(ARRAY['f', 'r']) p
       ON CONFLICT (call_session_id, participant) DO UPDATE SET last_left_at = NULL""",
    """INSERT INTO call_participant_sessions (name, call_session_id, record, participant, started_at)
       SELECT 'conferenceRecords/c-' || i || '/participants/' || p || '/participantSessions/1',
              md5('mev-call' || i)::uuid::text, 'conferenceRecords/c-' || i,
              'conferenceRecords/c-' || i || '/participants/' || p, CASE p WHEN 'f' THEN %(fj)s ELSE %(rj)s END
       FROM generate_series(1, %(calls)s) i, unnest(ARRAY['f', 'r']) p
       ON CONFLICT (name) DO UPDATE SET ended_at = NULL""",
    """UPDATE call_sessions SET status = 'in_progress', started_at = coalesce(started_at, %(fj)s),
              freelancer_joined_at = %(fj)s, reviewer_joined_at = %(rj)s, freelancer_left_at = NULL,
              reviewer_left_at = NULL, attendance_synced_at = NULL, attendance_checked_at = NULL
       WHERE account_id LIKE %(like)s""",
]


def steady_state(engine: sa.Engine, *, calls: int, reviewers: int, seeded_at: dt.datetime) -> None:
    """Every call in progress with both people still connected: the rows their joins' events would write."""
    params = {"calls": calls, "reviewers": reviewers, "like": PREFIX + "%", "fj": seeded_at - FREELANCER_JOINS,
              "rj": seeded_at - REVIEWER_JOINS}
    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        with raw.cursor() as cursor:
            for statement in _STEADY_SQL:
                cursor.execute(statement, params)


def seed(engine: sa.Engine, *, calls: int, hosts: int, reviewers: int, now: dt.datetime) -> float:
    """Replace the previous run's calls with ``calls`` fresh waiting ones; the seconds it took."""
    started = time.perf_counter()
    params = {"prefix": PREFIX, "like": PREFIX + "%", "calls": calls, "hosts": hosts, "reviewers": reviewers,
              "s": now, "ready": now - READY_BEFORE}
    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        with raw.cursor() as cursor:
            for statement in _RESET_SQL + _SEED_SQL:
                cursor.execute(statement, params)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "VACUUM ANALYZE accounts, verification_requests, reviewers, call_sessions, call_conferences, "
            "call_participants, call_participant_sessions, meet_event_receipts, outbox_events")
    return time.perf_counter() - started


# ---------------------------------------------------------------- Meet, answering at once from dicts

class FakeInstantMeet:
    """The Meet gateway of the benchmark: the seeded calls' conferences, answered from memory, each read counted.

    A conference is readable only as its own host (as Google's API answers another user: not found).
    ``attendance()`` is a full read of a space (what polling and reconciliation do): it counts as
    ``READS_PER_CALL`` reads, as the quota budget in ``calls/reconciliation.py`` does.
    """

    def __init__(self, calls: int, hosts: int, reviewers: int, seeded_at: dt.datetime, *,
                 still_connected: bool = False) -> None:
        self.reads: Counter[str] = Counter()          # by method
        self.host_reads: Counter[str] = Counter()     # by host user
        self.still_connected = still_connected        # attendance(): both people still in the call
        self._calls, self._hosts, self._reviewers, self._s = calls, hosts, reviewers, seeded_at

    def _count(self, method: str, host: str, reads: int = 1) -> None:
        self.reads[method] += reads
        self.host_reads[host] += reads

    def _number(self, name: str, host: str) -> int:
        """The call number of a conference record (or anything below it), readable as ``host``."""
        try:
            n = int(name.split("/")[1].removeprefix("c-"))
        except (IndexError, ValueError):
            raise MeetNotFound(f"{name} does not exist") from None
        if not 1 <= n <= self._calls or host_of(n, self._hosts) != host:
            raise MeetNotFound(f"{name} is not {host}'s")
        return n

    def _people(self, n: int) -> tuple[Participant, Participant]:
        record, s = record_of(n), self._s
        closed = not self.still_connected
        return (Participant(f"{record}/participants/f", "signed_in", f"users/mev-f-{n}", f"Freelancer {n}",
                            (ParticipantSession(s - FREELANCER_JOINS, s - FREELANCER_LEAVES if closed else None,
                                                f"{record}/participants/f/participantSessions/1"),)),
                Participant(f"{record}/participants/r", "signed_in", f"users/mev-r-{n % self._reviewers}",
                            f"Bench Reviewer {n % self._reviewers}",
                            (ParticipantSession(s - REVIEWER_JOINS, s - REVIEWER_LEAVES if closed else None,
                                                f"{record}/participants/r/participantSessions/1"),)))

    def conference(self, record_name: str, *, host: str) -> ConferenceRecord:
        self._count("conferenceRecords.get", host)
        n = self._number(record_name, host)
        return ConferenceRecord(record_of(n), f"spaces/b-{n}", self._s - FREELANCER_JOINS, None)

    def participant(self, participant_name: str, *, host: str) -> Participant:
        self._count("participants.get", host)
        who = {"f": 0, "r": 1}.get(participant_name.rsplit("/", 1)[-1])
        if who is None:
            raise MeetNotFound(f"{participant_name} does not exist")
        return dataclasses.replace(self._people(self._number(participant_name, host))[who], sessions=())

    def participant_session(self, session_name: str, *, host: str) -> ParticipantSession:
        self._count("participantSessions.get", host)
        n = self._number(session_name, host)
        for person in self._people(n):
            if person.sessions[0].name == session_name:
                return person.sessions[0]
        raise MeetNotFound(f"{session_name} does not exist")

    def attendance(self, space_name: str, *, host: str) -> list[ConferenceAttendance]:
        self._count("attendance (full read)", host, READS_PER_CALL)
        n = int(space_name.removeprefix("spaces/b-"))
        self._number(record_of(n), host)
        return [ConferenceAttendance(record_of(n), self._s - FREELANCER_JOINS, None, self._people(n))]

    def __getattr__(self, name: str) -> Any:  # what the benchmark never asks (spaces, invites)
        def unused(*_args: Any, **_kwargs: Any) -> Any:
            raise MeetError(f"the benchmark's Meet does not do {name}")
        return unused


# ---------------------------------------------------------------- Pub/Sub's push token, signed by our own key

@dataclasses.dataclass(frozen=True)
class PushKey:
    kid: str
    private_pem: str
    public_pem: str

    @classmethod
    def new(cls) -> PushKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        return cls("mev-bench-key", private, public)

    def certs(self, *, refresh: bool = False) -> dict[str, str]:  # the verifier's Certs: nothing to refresh
        return {self.kid: self.public_pem}

    def tokens(self, audience: str, count: int) -> list[str]:
        """``count`` tokens as Pub/Sub signs them (valid an hour), each issued a second apart."""
        signer = crypt.RSASigner.from_string(self.private_pem, key_id=self.kid)
        now = int(time.time())
        return [jwt.encode(signer, {"iss": "https://accounts.google.com", "aud": audience, "azp": "1087",
                                    "sub": "1087", "email": PUSH_ACCOUNT, "email_verified": True,
                                    "iat": now - i, "exp": now - i + 3600}).decode() for i in range(count)]


# ---------------------------------------------------------------- the events of a call

def call_events(n: int, hosts: int, seeded_at: dt.datetime, *, conference: bool) -> list[CloudEvent]:
    """Call ``n``'s events in Meet's order: the freelancer joins, the reviewer joins, the freelancer
    leaves, the reviewer leaves (with ``conference``: the conference starts first and ends last)."""
    record, s = record_of(n), seeded_at
    source, subject = SOURCE + f"{PREFIX}sub-{n % hosts}", f"//cloudidentity.googleapis.com/users/mev-host-{n % hosts}"
    f, r = f"{record}/participants/f/participantSessions/1", f"{record}/participants/r/participantSessions/1"
    steps = [(PARTICIPANT_JOINED, f, FREELANCER_JOINS), (PARTICIPANT_JOINED, r, REVIEWER_JOINS),
             (PARTICIPANT_LEFT, f, FREELANCER_LEAVES), (PARTICIPANT_LEFT, r, REVIEWER_LEAVES)]
    if conference:
        steps = [(CONFERENCE_STARTED, record, FREELANCER_JOINS), *steps, (CONFERENCE_ENDED, record, REVIEWER_LEAVES)]
    events = []
    for k, (kind, name, before) in enumerate(steps):
        key = "participantSession" if "/participantSessions/" in name else "conferenceRecord"
        events.append(CloudEvent(id=f"{PREFIX}{n}-{k}", type=kind, source=source, subject=subject, time=s - before,
                                 data={key: {"name": name}}))
    return events


def push_json(event: CloudEvent, publish_time: dt.datetime) -> bytes:
    """The push's HTTP body, serialised once before the clock runs."""
    return json.dumps(push_body(event, message_id=event.id.removeprefix(PREFIX), push_subscription=PUSH_SUBSCRIPTION,
                                publish_time=publish_time)).encode()


# ---------------------------------------------------------------- the app, and a worker process pushing events

PATH = MEET_EVENTS_PATH
BLOCK = 100  # calls a worker has in flight at once (their events interleaved); a budget stops between blocks


def make_app(url: str, hosts: int, reviewers: int, calls: int, seeded_at: dt.datetime, key: PushKey,
             scratch: Path, *, still_connected: bool = False) -> Flask:
    """The production app with events on, the benchmark's Meet, and a verifier trusting ``key``."""
    users = ",".join(host_of(h, hosts) for h in range(hosts))
    env = {**service_env(url, 0, scratch, {}), "VERIFY_MEET_HOST_USERS": users,
           "VERIFY_MEET_EVENTS_TOPIC": TOPIC, "VERIFY_MEET_EVENTS_PUSH_ACCOUNT": PUSH_ACCOUNT}
    app = create_app(load_settings(env))
    registry = app.extensions[KEY]
    registry.meet = FakeInstantMeet(calls, hosts, reviewers, seeded_at, still_connected=still_connected)
    app.extensions[VERIFIER] = PushVerifier(audience=registry.settings.meet_events_audience, email=PUSH_ACCOUNT,
                                            certs=key.certs)
    return app


@dataclasses.dataclass(frozen=True)
class Job:
    """What one worker process does: the calls n with n mod workers == worker."""

    url: str
    worker: int
    workers: int
    calls: int
    hosts: int
    reviewers: int
    seeded_at: dt.datetime
    conference: bool
    key: PushKey
    scratch: str
    budget: float                # seconds: no new block of calls starts after it
    profile: bool = False
    threads: int = 8             # concurrent pushes per process


def push_events(job: Job, barrier: Any, results: Any) -> None:
    """A worker: build its pushes, wait for the others, POST them in order; put its figures on ``results``."""
    try:
        results.put(_push_events(job, barrier))
    except BaseException as exc:  # the parent reports it and fails the run
        barrier.abort()
        results.put({"error": f"worker {job.worker}: {exc!r}\n{traceback.format_exc()}"})


def _push_events(job: Job, barrier: Any) -> dict[str, Any]:
    scratch = Path(job.scratch)
    sys.stderr = (scratch / f"worker-{job.worker}.log").open("a")  # the app's JSON log lines go there
    app = make_app(job.url, job.hosts, job.reviewers, job.calls, job.seeded_at, job.key, scratch / f"w{job.worker}")
    registry, client = app.extensions[KEY], app.test_client()
    tokens = [f"Bearer {token}" for token in job.key.tokens(registry.settings.meet_events_audience, 5)]
    mine = list(range(1 + job.worker, job.calls + 1, job.workers))
    blocks = [mine[i:i + BLOCK] for i in range(0, len(mine), BLOCK)]
    # Warm-up: events of conferences no call holds (received, ignored), then the counters start from zero.
    for i in range(20):
        warm = CloudEvent(f"{PREFIX}warm-{job.worker}-{i}", CONFERENCE_STARTED, SOURCE + f"{PREFIX}sub-0", "",
                          job.seeded_at, {"conferenceRecord": {"name": f"conferenceRecords/none-{i}"}})
        client.post(PATH, data=push_json(warm, job.seeded_at), headers={"Authorization": tokens[0]},
                    content_type="application/json")
    verifier = app.extensions[VERIFIER]
    started = time.perf_counter()
    for i in range(200):  # the token check alone
        verifier.verify(tokens[i % len(tokens)])
    verify_us = (time.perf_counter() - started) / 200 * 1e6
    statements = [0]
    sa.event.listen(registry.engine, "before_cursor_execute", lambda *_a, **_k: statements.__setitem__(
        0, statements[0] + 1))
    registry.meet.reads.clear()
    latencies: list[float] = []
    done: list[int] = []
    profiler = cProfile.Profile() if job.profile else None
    barrier.wait(timeout=300)
    start = time.monotonic()
    deadline = start + job.budget
    if profiler is not None:
        profiler.enable()
    failures: list[str] = []

    def post_all(calls: list[int]) -> None:
        """One of the process's concurrent pushers (as Pub/Sub keeps several pushes outstanding): its calls'
        events, the calls side by side, each call's events in order."""
        mine_client = app.test_client()
        per_call = [call_events(n, job.hosts, job.seeded_at, conference=job.conference) for n in calls]
        for k in range(len(per_call[0]) if per_call else 0):
            for events in per_call:
                body = push_json(events[k], job.seeded_at)
                before = time.perf_counter()
                response = mine_client.post(PATH, data=body, headers={"Authorization": tokens[k % 5]},
                                            content_type="application/json")
                latencies.append(1000 * (time.perf_counter() - before))
                if response.status_code != 204:
                    failures.append(f"{events[k].id} answered {response.status_code}: "
                                    f"{response.get_data(as_text=True)[:500]}")
                    return

    for block in blocks:
        if time.monotonic() >= deadline:
            break
        pushers = [threading.Thread(target=post_all, args=(block[t::job.threads],)) for t in range(job.threads)]
        for pusher in pushers:
            pusher.start()
        for pusher in pushers:
            pusher.join()
        if failures:
            raise RuntimeError(failures[0])
        done += block
    # What the pushes left pending (a drain running when the last ones came), as the drain job would apply it.
    from verify_service.meet_events import apply as apply_events
    while apply_events.drain(registry.sessions, registry.meet, settings=registry.settings,
                             now=registry.now()).results:
        pass
    end = time.monotonic()
    out = io.StringIO()
    if profiler is not None:
        profiler.disable()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(r"verify_service|google|flask", 40)
    registry.engine.dispose()
    return {"start": start, "end": end, "latencies": latencies, "statements": statements[0], "done": done,
            "reads": dict(registry.meet.reads), "verify_us": verify_us, "profile": out.getvalue()}


# ---------------------------------------------------------------- processing alone (the drain)

def receive_all(url: str, calls: int, hosts: int, reviewers: int, seeded_at: dt.datetime, key: PushKey,
                scratch: Path, *, conference: bool) -> int:
    """Every call's events received (pending receipts), as pushes would leave them; how many."""
    from verify_service.db import unit_of_work
    from verify_service.meet_events import apply

    app = make_app(url, hosts, reviewers, calls, seeded_at, key, scratch)
    registry = app.extensions[KEY]
    events = [e for n in range(1, calls + 1) for e in call_events(n, hosts, seeded_at, conference=conference)]
    for start in range(0, len(events), 1000):
        with unit_of_work(registry.sessions) as db:
            for event in events[start:start + 1000]:
                apply.receive(db, event, now=seeded_at)
    registry.engine.dispose()
    return len(events)


def drain_events(job: Job, barrier: Any, results: Any) -> None:
    """A drain process: apply pending events a batch at a time until none is left; its figures on ``results``."""
    try:
        from verify_service.meet_events import apply

        scratch = Path(job.scratch)
        sys.stderr = (scratch / f"drain-{job.worker}.log").open("a")
        app = make_app(job.url, job.hosts, job.reviewers, job.calls, job.seeded_at, job.key,
                       scratch / f"d{job.worker}")
        registry = app.extensions[KEY]
        statements = [0]
        sa.event.listen(registry.engine, "before_cursor_execute", lambda *_a, **_k: statements.__setitem__(
            0, statements[0] + 1))
        barrier.wait(timeout=300)
        start, applied, batches = time.monotonic(), 0, 0
        now = job.seeded_at + dt.timedelta(minutes=30)
        while True:
            drained = apply.drain(registry.sessions, registry.meet, settings=registry.settings, now=now)
            if not drained.results:
                if not apply.has_pending(registry.sessions, now):  # the other drain may hold some
                    break
                continue
            applied += len(drained.results)
            batches += 1
        end = time.monotonic()
        registry.engine.dispose()
        results.put({"start": start, "end": end, "applied": applied, "batches": batches,
                     "statements": statements[0], "reads": dict(registry.meet.reads)})
    except BaseException as exc:  # the parent reports it and fails the run
        barrier.abort()
        results.put({"error": f"drain {job.worker}: {exc!r}\n{traceback.format_exc()}"})
