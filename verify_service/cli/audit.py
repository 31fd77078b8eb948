"""``verify-service audit``: check the hash-chained audit log, and sign its head (checkpoints)."""

from __future__ import annotations

import sys
from typing import Any

import click

from verify_service.cli.common import load_app, log, main, registry_of


@main.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@click.option("--checkpoints", "checkpoint_file", type=click.File("r", encoding="utf-8"), default=None,
              help="Also check these signed checkpoints (JSON lines: exported log lines or audit.checkpoint "
                   "events; '-' reads standard input).")
def audit_verify(checkpoint_file: Any) -> None:
    """Recompute the chain; exit 1 and name the first broken link if it was tampered with.

    With --checkpoints, also check that each checkpoint's signature holds and that the entry it names
    still has its hash: that finds a chain rewritten and recomputed by someone with database access.
    """
    from verify_service.ops.checkpoints import verify_checkpoints
    from verify_service.audit.services import verify_chain
    from verify_service.crypto import KeysUnavailable
    from verify_service.db import unit_of_work

    reg = registry_of(load_app())
    loaded = _read_checkpoints(checkpoint_file) if checkpoint_file is not None else None
    try:
        key = reg.keyring.checkpoint_key() if loaded is not None else b""
    except KeysUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    with unit_of_work(reg.sessions, write=False) as db:
        report = verify_chain(db)
        held = verify_checkpoints(db, loaded, key=key) if loaded is not None and report.ok else None
    if not report.ok:
        click.echo(f"audit chain BROKEN at entry {report.broken_at}: {report.problem} "
                   f"({report.checked} entries before it verified)", err=True)
        sys.exit(1)
    if held is None:
        click.echo(f"audit chain intact: {report.checked} entries verified")
        return
    if held.forged:
        click.echo(f"checkpoints REFUSED: {held.problem}", err=True)
        sys.exit(1)
    if not held.ok:
        click.echo(f"audit chain REWRITTEN at entry {held.broken_at}: {held.problem}; its own hashes agree "
                   f"({report.checked} entries), so they were recomputed after the change", err=True)
        sys.exit(1)
    click.echo(f"audit chain intact: {report.checked} entries verified; all {held.checked} checkpoints hold "
               f"(the latest at entry {held.intact_up_to})")


def _read_checkpoints(lines: Any) -> list[Any]:
    """``(line number, checkpoint)`` of every non-blank line. Raises: ClickException naming a bad line."""
    from verify_service.ops.checkpoints import MalformedCheckpoint, parse_line

    found = []
    for number, line in enumerate(lines, start=1):
        try:
            checkpoint = parse_line(line)
        except MalformedCheckpoint as exc:
            raise click.ClickException(f"{lines.name}, line {number}: {exc}") from exc
        if checkpoint is not None:
            found.append((number, checkpoint))
    if not found:
        # Never "all checkpoints hold" for an export that holds none (a wrong file, an empty log).
        raise click.ClickException(f"{lines.name} holds no checkpoint")
    return found


@audit.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the chain's head now: log it, send it as an audit.checkpoint event, and print it (one JSON line)."""
    from verify_service.ops.checkpoints import ChainRewritten, log_line, write_checkpoint
    from verify_service.crypto import KeysUnavailable
    from verify_service.db import unit_of_work

    reg = registry_of(load_app())
    try:
        key = reg.keyring.checkpoint_key()
        with unit_of_work(reg.sessions) as db:
            checkpoint = write_checkpoint(db, key=key, now=reg.now(), force=True)
    except (KeysUnavailable, ChainRewritten) as exc:
        raise click.ClickException(str(exc)) from exc
    if checkpoint is None:
        click.echo("the audit chain is empty: nothing to checkpoint yet", err=True)
        return
    log.info("%s", log_line(checkpoint), extra={"checkpoint": checkpoint.as_dict()})
    click.echo(checkpoint.to_json())
