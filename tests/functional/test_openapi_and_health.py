"""The generated OpenAPI document, and the health endpoints."""

from __future__ import annotations

from openapi_spec_validator import validate

from tests.conftest import make_settings
from verify_service import create_app, migrate
from verify_service.registry import KEY


def test_openapi_document_is_valid_3_1_and_describes_every_api_route(app, client) -> None:
    response = client.get("/api/v1/openapi.json")  # public: no API key needed
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    validate(document)
    routes = {(rule.rule, method) for rule in app.url_map.iter_rules() for method in rule.methods
              if rule.rule.startswith("/api/v1/") and rule.endpoint not in ("openapi_document", "asyncapi_document")
              and method not in ("HEAD", "OPTIONS")}
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    as_flask = {(path.replace("{", "<").replace("}", ">"), method) for path, method in documented}
    assert as_flask == routes


def test_openapi_schemas_come_from_the_validating_models(client) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    assert set(schemas["RequestReason"]["enum"]) == {"new_account", "risk_signal", "profile_change", "manual"}
    assert "reason" in schemas["VerificationRequestIn"]["required"]
    restrictions = document["paths"]["/api/v1/accounts/{account_id}/restrictions"]["get"]
    assert "ETag" in restrictions["responses"]["200"]["headers"]
    assert "304" in restrictions["responses"]
    assert restrictions["security"] == [{"bearer": []}]
    post = document["paths"]["/api/v1/accounts/{account_id}/verification-requests"]["post"]
    assert "Idempotency-Key" in [p["name"] for p in post["parameters"]]
    assert "application/problem+json" in post["responses"]["422"]["content"]


def test_healthz_is_always_up(client) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_reports_migrations_not_applied(client) -> None:
    # The test database is built with create_all, so there is no Alembic revision.
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["migrations"]["ok"] is False
    assert "db upgrade" in body["checks"]["migrations"]["detail"]


def test_readyz_is_ready_after_upgrade(tmp_path) -> None:
    # A database of its own (migrating the shared test schema would disturb other tests);
    # the migrations themselves are tested on both backends in test_migrations.
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'ready.sqlite3'}", tmp_path))
    migrate.upgrade(app.extensions[KEY].engine)
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ready"


def test_readyz_reports_an_unreachable_database(app, client, registry) -> None:
    from verify_service.db import make_engine

    registry.engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"]["ok"] is False


def test_readyz_reports_a_meet_configuration_error(registry, client) -> None:
    assert client.get("/readyz").get_json()["checks"]["meet"]["ok"] is True
    registry.note_meet("domain-wide delegation is missing for client 1234")
    check = client.get("/readyz").get_json()["checks"]["meet"]
    assert check["ok"] is False and "delegation" in check["detail"]
    registry.note_meet(None)  # the next successful call clears it
    assert client.get("/readyz").get_json()["checks"]["meet"]["ok"] is True
