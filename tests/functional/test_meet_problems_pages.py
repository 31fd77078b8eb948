"""A Meet configuration problem met by a freelancer's request: /readyz knows at once, and no page is a 500.

Both backends.
"""

from __future__ import annotations

from integrations.google_meet import MeetConfigurationError
from tests.conftest import Api
from tests.functional.test_freelancer_journey import Freelancer, all_calls, ana, gateway  # noqa: F401 (fixtures)
from tests.support.fake_meet import FakeMeetGateway
from verify_service.calls.models import MeetingStatus
from verify_service.calls.state import SessionStatus
from verify_service.registry import Registry

BROKEN = "cannot create a Meet space as host-1@fake.example: delegation revoked"


def test_a_start_that_meets_a_configuration_error_shows_on_readyz_at_once(
        ana: Freelancer, registry: Registry, gateway: FakeMeetGateway, api: Api) -> None:
    assert api.client.get("/readyz").get_json()["checks"]["meet"]["ok"] is True
    gateway.fail_next(MeetConfigurationError(BROKEN))
    assert ana.start().status_code == 303  # the freelancer keeps their place: the meeting is queued
    [call] = all_calls(registry)
    assert (call.status, call.meet_status) == (SessionStatus.WAITING, MeetingStatus.QUEUED)
    ready = api.client.get("/readyz")  # no job has run since
    assert ready.status_code == 503 and ready.get_json()["checks"]["meet"]["ok"] is False
    assert BROKEN in str(ready.get_json()["checks"]["meet"])


def test_a_meet_backend_that_cannot_be_built_answers_503_and_changes_nothing(
        ana: Freelancer, registry: Registry, gateway: FakeMeetGateway, api: Api) -> None:
    assert ana.start().status_code == 303
    [call] = all_calls(registry)
    registry.meet = None  # the gateway is built again from settings that cannot work
    registry.settings = registry.settings.replace(meet_backend="google", google_service_account_file="")
    refused = ana.post(f"/verify/calls/{call.id}/cancel")
    assert refused.status_code == 503 and "nothing was changed" in refused.get_data(as_text=True)
    assert all_calls(registry)[0].status is SessionStatus.WAITING
    ready = api.client.get("/readyz").get_json()["checks"]["meet"]
    assert ready["ok"] is False and "VERIFY_GOOGLE_SERVICE_ACCOUNT_FILE" in ready["detail"]
