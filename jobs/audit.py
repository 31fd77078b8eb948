"""The hourly checkpoint of the audit chain (verify_service/audit/checkpoints.py)."""

from __future__ import annotations

import logging

from flask import Flask

from jobs.runner import job_unit
from verify_service.ops import checkpoints

log = logging.getLogger("jobs")


def checkpoint_audit_chain(app: Flask) -> checkpoints.Checkpoint | None:
    """Sign the chain's head and send it out (log line and ``audit.checkpoint`` event) when it moved.

    Raises:
        KeysUnavailable: VERIFY_AUDIT_CHECKPOINT_KEY is not set (possible only outside production).
        ChainRewritten: the entry the last checkpoint signed has another hash now.
    """
    with job_unit(app, "checkpoint_audit_chain") as (db, registry):
        checkpoint = checkpoints.write_checkpoint(db, key=registry.keyring.checkpoint_key(), now=registry.now())
    if checkpoint is not None:
        # Logged only once committed, so every logged checkpoint is one the event stream also carries.
        log.info("%s", checkpoints.log_line(checkpoint), extra={"checkpoint": checkpoint.as_dict()})
    return checkpoint
