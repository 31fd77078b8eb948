"""``verify-service outbox``: operate the webhooks to the account service."""

from __future__ import annotations

import click

from verify_service.cli.common import load_app, main, registry_of


@main.group()
def outbox() -> None:
    """Webhooks to the account service."""


@outbox.command("deliver")
@click.option("--once", is_flag=True, required=True, help="Run one delivery pass and exit.")
def outbox_deliver(once: bool) -> None:
    """Deliver every event that is due now, in order."""
    from jobs.outbox import deliver_outbox

    report = deliver_outbox(load_app())
    if report is None:
        raise click.ClickException("VERIFY_ACCOUNT_SERVICE_WEBHOOK_URL is not set: nowhere to deliver")
    if report.disabled:
        raise click.ClickException("delivery is disabled after a 410 Gone; run 'verify-service outbox enable'")
    click.echo(f"delivered {report.delivered}, failed {report.failed}, dead-lettered {report.dead}, "
               f"errors {report.errors}")


@outbox.command("redeliver")
@click.argument("event_id", required=False)
@click.option("--dead", "all_dead", is_flag=True, help="Every dead-lettered event.")
def outbox_redeliver(event_id: str | None, all_dead: bool) -> None:
    """Put a dead-lettered event (EVENT_ID) or all of them (--dead) back in line."""
    from verify_service.db import unit_of_work
    from verify_service.errors import DomainError
    from verify_service.webhooks.outbox import redeliver

    if bool(event_id) == all_dead:
        raise click.UsageError("give either an EVENT_ID or --dead")
    reg = registry_of(load_app())
    try:
        with unit_of_work(reg.sessions) as db:
            count = redeliver(db, event_id=event_id, all_dead=all_dead, actor="cli", now=reg.now())
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"{count} event(s) queued for redelivery")


@outbox.command("enable")
def outbox_enable() -> None:
    """Resume delivery after the account service answered 410 Gone."""
    from verify_service.db import unit_of_work
    from verify_service.webhooks.outbox import enable_endpoint

    reg = registry_of(load_app())
    with unit_of_work(reg.sessions) as db:
        was_disabled = enable_endpoint(db, reg.settings.account_service_webhook_url, actor="cli",
                                       now=reg.now())
    click.echo("delivery enabled" if was_disabled else "delivery was not disabled")


@outbox.command("status")
def outbox_status_command() -> None:
    """Pending and dead-lettered events, and whether delivery is enabled."""
    from verify_service.db import unit_of_work
    from verify_service.webhooks.outbox import outbox_status

    reg = registry_of(load_app())
    with unit_of_work(reg.sessions, write=False) as db:
        status = outbox_status(db, reg.settings.account_service_webhook_url or None)
    click.echo(f"pending {status.pending}, dead-lettered {status.dead}, oldest pending "
               f"{status.oldest_pending_at.isoformat() if status.oldest_pending_at else '-'}")
    if status.waiting_reason:
        click.echo(status.waiting_reason)
    if status.endpoint_disabled_at:
        click.echo(f"DISABLED since {status.endpoint_disabled_at.isoformat()}: {status.endpoint_disabled_reason}")
