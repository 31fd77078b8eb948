"""Request ids, structured and redacted logs, /metrics, and the security headers on every response."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import API_KEY, Api, FakeClock, make_settings
from verify_service import DEFAULT_CSP, create_app
from verify_service.calls.models import CallSession, MeetHost, MeetSpaceCreation
from verify_service.calls.state import SessionStatus
from verify_service.observability.metrics import EXTENSION, BusinessCollector
from verify_service.registry import KEY
from verify_service.review.views import SESSION_PAGE_CSP
from verify_service.webhooks.event_examples import examples
from verify_service.webhooks.models import DeliveryStatus, OutboxEvent

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(client: Any, name: str, **labels: str) -> float:
    response = client.get("/metrics")
    assert response.status_code == 200
    return _samples(response.get_data(as_text=True)).get((name, frozenset(labels.items())), 0.0)


def _json_lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


@pytest.fixture
def json_app(database_url: str, tmp_path: Path, clock: FakeClock) -> Flask:
    app = create_app(make_settings(database_url, tmp_path, log_format="json"))
    app.extensions[KEY].clock = clock

    @app.get("/_test/log")
    def _log() -> str:  # logs what a careless caller might: headers, a launch URL, personal data
        logging.getLogger("verify_service.test").info(
            "handled %s", request.url, extra={"headers": dict(request.headers), "email": "ana@example.com",
                                              "account_id": "acc-1", "details": {"password": "hunter2"}})
        return "ok"

    yield app
    app.extensions[KEY].engine.dispose()


# ---------------------------------------------------------------- request ids

def test_a_sane_request_id_is_propagated(client) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "edge-42.a_b"})
    assert response.headers["X-Request-ID"] == "edge-42.a_b"


@pytest.mark.parametrize("given", [None, "", "has space", "x" * 129, "semi;colon", "é"])
def test_a_missing_or_unsafe_request_id_is_replaced_by_a_fresh_one(client, given: str | None) -> None:
    headers = {"X-Request-ID": given} if given is not None else {}
    first = client.get("/healthz", headers=headers).headers["X-Request-ID"]
    second = client.get("/healthz", headers=headers).headers["X-Request-ID"]
    assert first != given and len(first) == 32 and int(first, 16) >= 0
    assert first != second


def test_error_responses_carry_the_request_id_too(client) -> None:
    response = client.get("/api/v1/accounts/acc-1/restrictions", headers={"X-Request-ID": "rid-401"})
    assert response.status_code == 401
    assert response.headers["X-Request-ID"] == "rid-401"


# ---------------------------------------------------------------- logs

def test_log_lines_are_json_with_the_request_id(json_app: Flask, capsys) -> None:
    capsys.readouterr()
    json_app.test_client().get("/_test/log", headers={"X-Request-ID": "rid-json-1"})
    lines = [line for line in _json_lines(capsys.readouterr().err) if line["logger"] == "verify_service.test"]
    assert len(lines) == 1
    line = lines[0]
    assert {"time", "level", "logger", "message", "request_id"} <= set(line)
    assert line["level"] == "INFO" and line["request_id"] == "rid-json-1"
    assert line["account_id"] == "acc-1"  # extra fields are kept ...
    assert line["email"] == "[redacted]" and line["details"] == {"password": "[redacted]"}  # ... unless sensitive


def test_secrets_and_launch_tokens_never_reach_the_log(json_app: Flask, capsys) -> None:
    client = json_app.test_client()
    Api(client).put_account("acc-1")
    url = client.post("/api/v1/accounts/acc-1/launch-links", headers=AUTH).get_json()["url"]
    token = url.rsplit("/", 1)[1]
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        capsys.readouterr()
        client.get(f"/verify/launch/{token}", headers=AUTH)
        client.get(f"/_test/log?next=/verify/launch/{token}", headers={**AUTH, "Referer": url,
                                                                          "Cookie": "session=sekrit-cookie"})
        err = capsys.readouterr().err
    finally:
        logging.getLogger().setLevel(logging.INFO)
    assert "/_test/log" in err  # the capture works: the careless line was written
    for secret in (token, API_KEY, "sekrit-cookie", "hunter2", "ana@example.com"):
        assert secret not in err


def test_text_format_is_readable_and_carries_the_request_id(app: Flask, capsys) -> None:
    @app.get("/_test/text")
    def _text() -> str:
        logging.getLogger("verify_service.test").warning("plain line")
        return "ok"

    capsys.readouterr()
    app.test_client().get("/_test/text", headers={"X-Request-ID": "rid-text"})
    err = capsys.readouterr().err
    assert "WARNING verify_service.test [rid-text]: plain line" in err


def test_the_scheduler_s_routine_lines_stay_out_of_the_log_and_its_errors_do_not(app: Flask, capsys) -> None:
    """APScheduler says "Adding job tentatively" for each job added before start, and two lines a run: not news."""
    from apscheduler.schedulers.background import BackgroundScheduler

    capsys.readouterr()
    scheduler = BackgroundScheduler()
    scheduler.add_job(print, "interval", seconds=60, id="a_job")  # before start: the "tentatively" line
    logging.getLogger("apscheduler.executors.default").info('Running job "a_job"')
    logging.getLogger("apscheduler.executors.default").error('Job "a_job" raised an exception')
    logging.getLogger("apscheduler.scheduler").warning("Execution of job a_job skipped")
    err = capsys.readouterr().err
    assert "Adding job tentatively" not in err and "Running job" not in err
    assert 'ERROR apscheduler.executors.default [-]: Job "a_job" raised an exception' in err
    assert "WARNING apscheduler.scheduler [-]: Execution of job a_job skipped" in err


# ---------------------------------------------------------------- metrics

def test_metrics_count_requests_per_endpoint_name_never_raw_paths(client) -> None:
    before = _value(client, "verify_http_requests_total", endpoint="health.healthz", method="GET", status="2xx")
    unmatched = _value(client, "verify_http_requests_total", endpoint="unmatched", method="GET", status="4xx")
    for _ in range(3):
        client.get("/healthz")
    client.get("/no/such/secret-path-123")
    response = client.get("/metrics")
    text = response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = _samples(text)
    assert samples[("verify_http_requests_total", frozenset(
        {"endpoint": "health.healthz", "method": "GET", "status": "2xx"}.items()))] == before + 3
    assert samples[("verify_http_requests_total", frozenset(
        {"endpoint": "unmatched", "method": "GET", "status": "4xx"}.items()))] == unmatched + 1
    assert "secret-path-123" not in text
    assert samples[("verify_http_request_duration_seconds_count", frozenset(
        {"endpoint": "health.healthz", "method": "GET"}.items()))] >= 3


def _seed_business_state(registry: Any, api: Api, clock: FakeClock) -> None:
    now = clock()
    api.put_account("acc-1")
    with registry.sessions() as session, session.begin():
        for minutes in (5, 12):
            ready = now - dt.timedelta(minutes=minutes)
            session.add(CallSession(account_id="acc-1", status=SessionStatus.WAITING, created_at=ready,
                                    updated_at=ready, meet_ready_at=ready))
        session.add(CallSession(account_id="acc-1", status=SessionStatus.COMPLETED, created_at=now - dt.timedelta(
            hours=5), updated_at=now))
        session.add_all([MeetHost(email="a@hosts.example", saturated_until=now + dt.timedelta(seconds=30)),
                         MeetHost(email="b@hosts.example", saturated_until=now - dt.timedelta(seconds=1))])
        session.flush()
        session.add_all([MeetSpaceCreation(host="a@hosts.example", created_at=now - dt.timedelta(seconds=s))
                         for s in (10, 20, 90)])
        for seq, (status, age) in enumerate([(DeliveryStatus.PENDING, 300), (DeliveryStatus.PENDING, 60),
                                             (DeliveryStatus.DEAD, 9000), (DeliveryStatus.DELIVERED, 99999)], 1):
            created = now - dt.timedelta(seconds=age)
            session.add(OutboxEvent(event_id=f"evt-{seq}", account_id="acc-1", seq=seq, type="verification.required",
                                    data={**examples()["verification.required"], "account_id": "acc-1", "seq": seq},
                                    created_at=created, status=status, next_attempt_at=created))


def test_metrics_report_the_business_gauges(client, api: Api, registry, clock: FakeClock) -> None:
    with registry.sessions() as session, session.begin():  # whatever the API emitted is not under test
        session.query(OutboxEvent).delete()
    _seed_business_state(registry, api, clock)
    samples = _samples(client.get("/metrics").get_data(as_text=True))

    def gauge(name: str) -> float:
        return samples[(name, frozenset())]

    assert gauge("verify_waiting_sessions") == 2
    assert gauge("verify_oldest_wait_seconds") == 12 * 60
    assert gauge("verify_outbox_pending") == 2
    assert gauge("verify_outbox_lag_seconds") == 300
    assert gauge("verify_outbox_dead_letters") == 1
    assert gauge("verify_meet_hosts_saturated") == 1
    assert gauge("verify_meet_quota_used_ratio") == pytest.approx(2 / registry.settings.meet_project_creates_per_minute)


def test_a_failing_gauge_query_does_not_break_metrics(app, client, monkeypatch) -> None:
    def broken(connection: Any, now: dt.datetime) -> Any:
        raise RuntimeError("database on fire")

    errors = _value(client, "verify_metrics_collect_errors_total", group="outbox")
    collector: BusinessCollector = app.extensions[EXTENSION]
    monkeypatch.setitem(collector.groups, "outbox", broken)
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = _samples(response.get_data(as_text=True))
    assert samples[("verify_metrics_collect_errors_total", frozenset({"group": "outbox"}.items()))] == errors + 1
    assert ("verify_waiting_sessions", frozenset()) in samples  # the other groups still report
    assert ("verify_outbox_pending", frozenset()) not in samples


def test_meet_errors_are_counted(client) -> None:
    from verify_service.observability.metrics import record_meet_error

    before = _value(client, "verify_meet_api_errors_total", kind="rate_limited")
    record_meet_error("rate_limited")
    assert _value(client, "verify_meet_api_errors_total", kind="rate_limited") == before + 1


# ---------------------------------------------------------------- security headers

def _assert_security_headers(response: Any, *, hsts: bool) -> None:
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    for directive in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in csp, (response.request.path, csp)
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] in ("same-origin", "no-referrer")
    assert ("Strict-Transport-Security" in headers) is hsts
    if hsts:
        assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def _every_kind_of_response(client: Any) -> list[Any]:
    Api(client).put_account("acc-1")
    responses = [
        client.get("/api/v1/accounts/acc-1/restrictions", headers=AUTH),  # API JSON
        client.get("/api/v1/accounts/acc-1/restrictions"),                # problem+json
        client.get("/", headers={"Accept": "text/html"}),                 # HTML page
        client.get("/static/site.css"),                                  # static file
        client.get("/no/such/page", headers={"Accept": "text/html"}),     # 404 page
        client.get("/metrics"),
    ]
    assert [r.status_code for r in responses] == [200, 401, 200, 200, 404, 200]
    assert responses[1].content_type == "application/problem+json"
    return responses


def test_every_response_class_has_the_security_headers(client) -> None:
    for response in _every_kind_of_response(client):
        _assert_security_headers(response, hsts=False)  # base URL is plain http here
    assert client.get("/healthz").headers["Content-Security-Policy"] == DEFAULT_CSP


@pytest.mark.parametrize(("env", "base_url", "hsts"), [("testing", "https://verify.example", True),
                                                       ("development", "https://verify.example", False),
                                                       ("testing", "http://verify.example", False)])
def test_hsts_only_over_https_outside_development(database_url: str, tmp_path: Path, env: str, base_url: str,
                                                  hsts: bool) -> None:
    app = create_app(make_settings(database_url, tmp_path, env=env, base_url=base_url))
    try:
        _assert_security_headers(app.test_client().get("/healthz"), hsts=hsts)
    finally:
        app.extensions[KEY].engine.dispose()


def test_a_page_policy_keeps_the_required_directives() -> None:
    from verify_service import _hardened_csp

    for directive in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "img-src 'self' https:"):
        assert directive in SESSION_PAGE_CSP
    hardened = _hardened_csp("default-src 'self'; img-src https:")
    assert hardened == "default-src 'self'; img-src https:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"


# ---------------------------------------------------------------- job runs

def test_each_job_run_logs_under_its_own_run_id_and_job_name(json_app: Flask, capsys) -> None:
    from jobs.runner import job_unit, run_recorded

    def tidy_job(app: Flask) -> None:
        with job_unit(app, "tidy_job"):
            logging.getLogger("verify_service.test").info("tidying")

    capsys.readouterr()
    run_recorded(tidy_job, json_app)
    run_recorded(tidy_job, json_app)
    logging.getLogger("verify_service.test").info("after the runs")
    lines = _json_lines(capsys.readouterr().err)
    tidying = [line for line in lines if line["message"] == "tidying"]
    done = [line for line in lines if line["message"].startswith("job tidy_job done in")]
    assert len(tidying) == len(done) == 2
    for inner, finished in zip(tidying, done):
        assert inner["job"] == finished["job"] == "tidy_job"
        assert inner["request_id"] == finished["request_id"] and len(inner["request_id"]) == 32
    assert tidying[0]["request_id"] != tidying[1]["request_id"]  # one id per run
    after = next(line for line in lines if line["message"] == "after the runs")
    assert after["request_id"] == "-" and "job" not in after  # nothing leaks out of the run


def test_an_explicit_extra_field_wins_over_a_bound_one(json_app: Flask, capsys) -> None:
    from verify_service.observability.logging import bind_request_id

    capsys.readouterr()
    with bind_request_id("run-7", job="outer"):
        logging.getLogger("verify_service.test").info("nested", extra={"job": "inner"})
    line = next(line for line in _json_lines(capsys.readouterr().err) if line["message"] == "nested")
    assert (line["request_id"], line["job"]) == ("run-7", "inner")
