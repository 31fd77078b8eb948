"""GET /api/v1/asyncapi.json: the AsyncAPI 3.0.0 document of the outbound events, checked by the official parser."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from flask.testing import FlaskClient

from tests.conftest import make_settings
from verify_service import create_app
from verify_service.review.reasons import REASONS
from verify_service.webhooks.events import PUBLIC_EVENT_MODELS

CONTRACT = Path(__file__).resolve().parents[1] / "contract"
PARSER = CONTRACT / "node_modules" / "@asyncapi" / "parser" / "package.json"


def test_the_document_is_public_cached_and_has_a_message_per_public_event_type(client: FlaskClient) -> None:
    response = client.get("/api/v1/asyncapi.json")  # no API key, like openapi.json
    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == client.get("/api/v1/openapi.json").headers["Cache-Control"]
    document = response.get_json()
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] and document["info"]["version"]
    [(name, channel)] = document["channels"].items()
    messages = document["components"]["messages"]
    assert set(channel["messages"]) == set(messages) == set(PUBLIC_EVENT_MODELS)
    assert "audit.checkpoint" not in messages  # internal: it goes through the outbox but is no part of the contract
    assert document["operations"]["send"]["action"] == "send"
    assert document["operations"]["send"]["channel"] == {"$ref": f"#/channels/{name}"}
    assert set(document["components"]["schemas"]["WebhookHeaders"]["properties"]) >= {
        "webhook-id", "webhook-timestamp", "webhook-signature"}


def test_the_schemas_are_the_models(client: FlaskClient) -> None:
    document = client.get("/api/v1/asyncapi.json").get_json()
    schemas = document["components"]["schemas"]
    for event_type, model in PUBLIC_EVENT_MODELS.items():
        payload = schemas[document["components"]["messages"][event_type]["payload"]["$ref"].rsplit("/", 1)[1]]
        assert payload["properties"]["type"]["const"] == event_type
        assert payload["properties"]["data"] == {"$ref": f"#/components/schemas/{model.__name__}"}
        own = model.model_json_schema(ref_template="#/components/schemas/{model}")
        own.pop("$defs", None)
        assert schemas[model.__name__] == own
    assert "#/$defs/" not in json.dumps(document)
    assert schemas["Failed"]["properties"]["reason_codes"]["items"]["enum"] == list(REASONS)
    assert "reason_codes" not in schemas["Failed"]["required"]  # left out when there are none, never null


def test_the_webhook_url_is_the_channels_server(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(database_url, tmp_path, account_service_webhook_url="https://market.example/hooks/verify")
    document = create_app(settings).test_client().get("/api/v1/asyncapi.json").get_json()
    assert document["servers"]["accountService"]["host"] == "market.example"
    assert document["servers"]["accountService"]["pathname"] == "/hooks/verify"
    [channel] = document["channels"].values()
    assert channel["address"] == "/hooks/verify"


def test_the_official_asyncapi_parser_finds_no_error(client: FlaskClient, tmp_path: Path) -> None:
    assert PARSER.exists(), f"{PARSER} is missing: run `npm ci --prefix tests/contract` (make test does)"
    node = shutil.which("node")
    assert node, "node is needed to run @asyncapi/parser"
    served = tmp_path / "asyncapi.json"
    served.write_bytes(client.get("/api/v1/asyncapi.json").data)
    run = subprocess.run([node, str(CONTRACT / "validate_asyncapi.mjs"), str(served)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    errors = [line for line in lines if line.get("severity") == "error"]
    assert errors == [], "\n".join(json.dumps(e) for e in errors)
    assert lines[-1] == {"parsed": True, "messages": len(PUBLIC_EVENT_MODELS)}


def test_the_parser_reports_a_broken_document(tmp_path: Path) -> None:
    """The check above can fail: a document with a dangling reference is an error-severity diagnostic."""
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"asyncapi": "3.0.0", "info": {"title": "x", "version": "1"},
                                  "channels": {"c": {"messages": {"m": {"$ref": "#/components/messages/none"}}}}}))
    run = subprocess.run([shutil.which("node") or "node", str(CONTRACT / "validate_asyncapi.mjs"), str(broken)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert any(json.loads(line).get("severity") == "error" for line in run.stdout.splitlines())
