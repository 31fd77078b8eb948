"""The sandbox Meet gateway keeps the MeetGateway contract (no database)."""

from __future__ import annotations

import inspect
import threading
import time
from pathlib import Path

import pytest

from integrations import make_meet_gateway
from integrations.google_meet import MeetConfigurationError, MeetError, MeetGateway
from integrations.sandbox_meet import SandboxMeetGateway
from verify_service.settings import Settings


def test_it_implements_the_interface_with_the_same_signature() -> None:
    gateway = SandboxMeetGateway()
    assert isinstance(gateway, MeetGateway)
    assert (inspect.signature(SandboxMeetGateway.end_active_conference)
            == inspect.signature(MeetGateway.end_active_conference))


def test_ending_a_live_conference_records_it() -> None:
    gateway = SandboxMeetGateway()
    gateway.start_conference("spaces/a")
    gateway.start_conference("spaces/b")
    gateway.end_active_conference("spaces/a")
    assert not gateway.is_live("spaces/a")
    assert gateway.is_live("spaces/b")
    assert gateway.ended == ["spaces/a"]


def test_nothing_live_or_no_such_space_returns_normally() -> None:
    gateway = SandboxMeetGateway()
    gateway.start_conference("spaces/a")
    gateway.end_active_conference("spaces/a")
    gateway.end_active_conference("spaces/a")  # already ended
    gateway.end_active_conference("spaces/never-existed")
    assert gateway.ended == ["spaces/a"]


def test_injected_failures_raise_meet_errors_then_stop() -> None:
    gateway = SandboxMeetGateway()
    gateway.start_conference("spaces/a")
    gateway.fail_next(times=2)
    for _ in range(2):
        with pytest.raises(MeetError):
            gateway.end_active_conference("spaces/a")
    assert gateway.is_live("spaces/a")
    gateway.fail_next(MeetConfigurationError("no credentials"))
    with pytest.raises(MeetConfigurationError, match="no credentials"):
        gateway.end_active_conference("spaces/a")
    gateway.end_active_conference("spaces/a")
    assert gateway.ended == ["spaces/a"]


class SlowSet(set):
    """Widens the gap between "is it live?" and "end it", where unguarded threads would race."""

    def __contains__(self, item: object) -> bool:
        found = super().__contains__(item)
        time.sleep(0.001)
        return found


def test_it_is_safe_to_share_between_threads() -> None:
    gateway = SandboxMeetGateway()
    spaces = [f"spaces/{i}" for i in range(30)]
    for space in spaces:
        gateway.start_conference(space)
    gateway._live = SlowSet(gateway._live)
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def end_all() -> None:
        barrier.wait()
        try:
            for space in spaces:
                gateway.end_active_conference(space)
        except BaseException as exc:  # reported below: a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=end_all) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # Each conference is ended exactly once, however many threads raced for it.
    assert sorted(gateway.ended) == sorted(spaces)


def test_the_factory_follows_the_settings(tmp_path: Path) -> None:
    settings = Settings(env="testing", instance_dir=tmp_path)
    assert isinstance(make_meet_gateway(settings), SandboxMeetGateway)
    with pytest.raises(MeetConfigurationError, match="not available yet"):
        make_meet_gateway(settings.replace(meet_backend="google"))
    with pytest.raises(MeetConfigurationError, match="unknown Meet backend"):
        make_meet_gateway(settings.replace(meet_backend="zoom"))
