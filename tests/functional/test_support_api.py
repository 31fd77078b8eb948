"""`POST /api/v1/client-checks` and `GET /api/v1/support-matrix`: public, validated, rate limited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.conftest import assert_problem, make_settings
from verify_service import create_app
from verify_service.registry import KEY
from verify_service.support.schemas import SupportMatrixOut, VerdictOut

CATALOG = Path(__file__).resolve().parents[1] / "fixtures" / "test_catalog.json"
CHROME_WIN = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/142.0.0.0 Safari/537.36")
CHROME_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/142.0.0.0 Safari/537.36")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    # No database work here: SQLite is enough for every backend.
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'support.sqlite3'}", tmp_path,
                                   release_catalog=str(CATALOG), client_check_rate_limit="5/minute"))
    yield app
    app.extensions[KEY].engine.dispose()


def check(client, body: dict, **environ: str):
    return client.post("/api/v1/client-checks", json=body, environ_base={"REMOTE_ADDR": "10.0.0.1", **environ})


def test_a_check_needs_no_key_and_answers_the_contract(app) -> None:
    response = check(app.test_client(), {"user_agent": CHROME_WIN})
    assert response.status_code == 200
    body = VerdictOut.model_validate(response.get_json())
    assert (body.verdict, body.browser.family, body.browser.major) == ("supported", "chrome", 142)
    assert body.browser.supported_majors == [142, 141, 140]


def test_posted_client_hints_decide_the_frozen_os(app) -> None:
    hints = {"brands": [{"brand": "Not)A;Brand", "version": "8"}, {"brand": "Google Chrome", "version": "142"}],
             "fullVersionList": [{"brand": "Google Chrome", "version": "142.0.7444.60"}],
             "mobile": False, "platform": "macOS", "platformVersion": "13.6.0", "architecture": "arm"}
    body = check(app.test_client(), {"user_agent": CHROME_MAC, "client_hints": hints}).get_json()
    assert body["verdict"] == "unsupported"
    assert body["os"] == {"family": "macos", "version": "13", "supported": False}
    assert body["reasons"][0]["message"] == "macOS 13 is not supported: update to macOS 14 or later."
    without = check(app.test_client(), {"user_agent": CHROME_MAC}).get_json()
    assert (without["verdict"], without["os"]["supported"]) == ("unverified", None)


@pytest.mark.parametrize(("body", "field"), [
    ({}, "user_agent"),
    ({"user_agent": 42}, "user_agent"),
    ({"user_agent": "x" * 2049}, "user_agent"),
    ({"user_agent": "x", "client_hints": {"mobile": "maybe"}}, "client_hints.mobile"),
    ({"user_agent": "x", "extra": True}, "extra"),
])
def test_bad_bodies_are_422_naming_the_field(app, body: dict, field: str) -> None:
    problem = assert_problem(check(app.test_client(), body), 422, "validation_failed")
    assert field in [e["field"] for e in problem["errors"]]


def test_checks_are_rate_limited_per_ip(app) -> None:
    client = app.test_client()
    for _ in range(5):
        assert check(client, {"user_agent": CHROME_WIN}).status_code == 200
    limited = check(client, {"user_agent": CHROME_WIN})
    assert_problem(limited, 429, "too_many_requests")
    assert int(limited.headers["Retry-After"]) > 0
    assert check(client, {"user_agent": CHROME_WIN}, REMOTE_ADDR="10.0.0.2").status_code == 200


def test_support_matrix_lists_the_current_majors(app) -> None:
    response = app.test_client().get("/api/v1/support-matrix")
    assert response.status_code == 200
    body = SupportMatrixOut.model_validate(response.get_json())
    assert body.browsers["safari"].supported_majors == ["26", "18", "17"]
    assert body.systems["ubuntu"].supported_majors == ["25.10", "25.04", "24.04"]
    assert body.systems["windows"].name == "Windows"


def test_both_operations_are_in_the_openapi_document(app) -> None:
    paths = app.test_client().get("/api/v1/openapi.json").get_json()["paths"]
    post = paths["/api/v1/client-checks"]["post"]
    assert "security" not in post  # public
    assert "429" in post["responses"]
    assert "get" in paths["/api/v1/support-matrix"]
