"""Staff sign-in state under concurrency, and its purge job (both backends, real connections and threads)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pyotp
import sqlalchemy as sa

from jobs import maintenance
from tests.support.staff import PASSWORD, signed_in, staff_member
from verify_service.db import unit_of_work
from verify_service.staff.models import Reviewer, SignInThrottle, StaffSession, Stage
from verify_service.staff import services, sessions, throttle


def test_concurrent_failures_are_all_counted(registry, clock) -> None:
    key = throttle.account_key("target@example.com", secret=registry.keyring.throttle_key())
    barrier = threading.Barrier(8)

    def fail() -> object:
        barrier.wait()
        with unit_of_work(registry.sessions) as session:
            return throttle.note_failure(session, key, now=clock())

    with ThreadPoolExecutor(max_workers=8) as pool:
        locks = list(pool.map(lambda _: fail(), range(8)))
    with registry.sessions() as session:
        row = session.scalars(sa.select(SignInThrottle)).one()
    assert row.failures == 8 and sum(lock is not None for lock in locks) == 4  # failures 5, 6, 7 and 8


def test_a_totp_code_sent_by_several_requests_at_once_is_accepted_once(registry, clock) -> None:
    reviewer = staff_member(registry)
    secret = pyotp.random_base32()
    with unit_of_work(registry.sessions) as session:
        stored = session.get(Reviewer, reviewer.id)
        stored.totp_secret, stored.totp_confirmed_at = secret, clock()
        pending = [sessions.open_session(session, reviewer.id, stage=Stage.PASSWORD_OK, ip=f"10.0.0.{n}",
                                         now=clock()) for n in range(6)]
    code, barrier = pyotp.TOTP(secret).at(clock()), threading.Barrier(6)

    def second_step(token: str) -> bool:
        barrier.wait()
        with unit_of_work(registry.sessions) as session:
            current = sessions.current(session, token, now=clock())
            assert current is not None
            return services.verify_second_step(session, current.staff_session, code, now=clock()).ok

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(second_step, pending))
    assert sorted(results) == [False] * 5 + [True]


def test_the_purge_job_removes_old_sessions_and_quiet_throttle_counters(app, client, registry, clock) -> None:
    reviewer = signed_in(client, registry)

    def fail(email: str) -> None:
        with unit_of_work(registry.sessions) as session:
            assert not services.sign_in_with_password(session, email, "wrong " + PASSWORD, ip="10.1.1.1",
                                                      now=clock()).ok

    fail("nobody@example.com")  # an account counter and an IP counter
    clock.advance(hours=11)  # the session is over (absolute 10 h) but kept a day for questions
    assert maintenance.purge_staff_sessions(app) == 0
    signed_in(client, registry)  # a fresh session stays
    fail("someone@example.com")
    clock.advance(hours=14)
    # The old session and the first account's counter; the IP's counter saw a failure 14 hours ago.
    assert maintenance.purge_staff_sessions(app) == 2
    with registry.sessions() as session:
        assert [row.reviewer_id for row in session.scalars(sa.select(StaffSession))] == [reviewer.id]
        assert session.scalar(sa.select(sa.func.count()).select_from(SignInThrottle)) == 2
