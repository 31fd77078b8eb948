"""Checkpoint signatures, and reading checkpoints back from every form an export may take (no database)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import io
import json
import logging

import pytest

from verify_service.ops import checkpoints
from verify_service.observability.logging import make_handler

KEY = b"checkpoint-" + b"c" * 40
CHECKPOINT = checkpoints.sign(42, "ab" * 32, at=dt.datetime(2026, 11, 22, 10, tzinfo=dt.timezone.utc), key=KEY)


def test_a_signature_holds_only_for_its_fields_and_its_key() -> None:
    assert checkpoints.signature_holds(CHECKPOINT, KEY)
    assert not checkpoints.signature_holds(CHECKPOINT, b"another key")
    for change in ({"seq": 43}, {"hash": "cd" * 32}, {"at": "2026-11-22T11:00:00.000000Z"}, {"signature": "é" * 64}):
        assert not checkpoints.signature_holds(dataclasses.replace(CHECKPOINT, **change), KEY), change


def _logged(log_format: str) -> str:
    """The line the job's log call gives in ``log_format`` (the service's handler writes to sys.stderr)."""
    stream, logger = io.StringIO(), logging.getLogger("test_audit_checkpoints")
    handler = make_handler(log_format)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with contextlib.redirect_stderr(stream):
            logger.warning("%s", checkpoints.log_line(CHECKPOINT), extra={"checkpoint": CHECKPOINT.as_dict()})
    finally:
        logger.removeHandler(handler)
    return stream.getvalue().strip()


@pytest.mark.parametrize("line", [
    CHECKPOINT.to_json(),
    json.dumps({"type": "audit.checkpoint", "timestamp": "2026-11-22T10:00:00Z",
                "data": {"account_id": "_audit", "seq": 7, "checkpoint": CHECKPOINT.as_dict()}}),
    json.dumps({"account_id": "_audit", "seq": 7, "checkpoint": CHECKPOINT.as_dict()}),
    _logged("json"),
    _logged("text"),
    "   ",
])
def test_checkpoints_are_read_back_from_exports_of_the_log_or_the_events(line: str) -> None:
    assert checkpoints.parse_line(line) == (None if not line.strip() else CHECKPOINT)


@pytest.mark.parametrize("line", ["not json", "[1, 2]", '{"seq": 1}', json.dumps({**CHECKPOINT.as_dict(), "seq": "42"}),
                                  json.dumps({**CHECKPOINT.as_dict(), "seq": 0}), '{"data": {"checkpoint": 3}}'])
def test_a_line_without_a_checkpoint_is_refused(line: str) -> None:
    with pytest.raises(checkpoints.MalformedCheckpoint):
        checkpoints.parse_line(line)
