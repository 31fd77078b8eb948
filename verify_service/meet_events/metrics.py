"""The Meet events gauges on ``/metrics``: Meet API reads against Google's quota, and which hosts' subscriptions live.

* ``verify_meet_read_calls_per_minute{host}`` and ``verify_meet_read_calls_per_minute_total``: the Meet API
  reads this process sent in the last 60 seconds (``observability/meet_reads.py``), every configured host
  shown, 0 when it read nothing;
* ``verify_meet_read_quota_per_minute{scope="user"|"project"}``: Google's limits as the settings give them
  (``VERIFY_MEET_READ_QUOTA_PER_USER`` / ``_PER_PROJECT``), to alert on the ratio;
* ``verify_meet_subscription_live{host}`` (with Meet events configured): 1 while the host's subscription is
  ACTIVE and not expired, else 0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import sqlalchemy as sa
from flask import Flask
from prometheus_client.core import GaugeMetricFamily, Metric

from verify_service.meet_events.models import MeetSubscription
from verify_service.meet_events.subscriptions import configured_hosts
from verify_service.observability import meet_reads
from verify_service.observability.metrics import GaugeReader, add_gauges, gauge
from verify_service.registry import KEY as REGISTRY_KEY
from verify_service.settings import Settings


def read_gauges(settings: Settings) -> GaugeReader:
    """The last minute's Meet API reads (this process's, no database) beside Google's quota."""
    hosts = configured_hosts(settings)

    def read(_connection: sa.Connection, _now: dt.datetime) -> Iterable[Metric]:
        reads = meet_reads.WINDOW.per_minute()
        per_host = GaugeMetricFamily("verify_meet_read_calls_per_minute",
                                     "Meet API read requests sent in the last minute, by host user.", labels=["host"])
        for host in sorted(set(hosts) | set(reads)):
            per_host.add_metric([host], reads.get(host, 0))
        yield per_host
        yield gauge("verify_meet_read_calls_per_minute_total", "Meet API read requests sent in the last minute.",
                    sum(reads.values()))
        quota = GaugeMetricFamily("verify_meet_read_quota_per_minute",
                                  "Meet API read requests Google allows a minute, per user and per project.",
                                  labels=["scope"])
        quota.add_metric(["user"], settings.meet_read_quota_per_user)
        quota.add_metric(["project"], settings.meet_read_quota_per_project)
        yield quota

    return read


def subscription_gauges(settings: Settings) -> GaugeReader:
    """Whether each configured host's subscription is live, from its row."""
    hosts = configured_hosts(settings)

    def read(connection: sa.Connection, now: dt.datetime) -> Iterable[Metric]:
        live = set(connection.execute(sa.select(MeetSubscription.host).where(
            MeetSubscription.state == "ACTIVE", MeetSubscription.expire_time > now)).scalars())
        family = GaugeMetricFamily("verify_meet_subscription_live",
                                   "1 while the host user's Meet events subscription is active and not expired.",
                                   labels=["host"])
        for host in hosts:
            family.add_metric([host], 1 if host in live else 0)
        yield family

    return read


def register_metrics(app: Flask) -> None:
    """Add the gauges to ``app``'s ``/metrics`` (the feature's blueprint calls it); the subscriptions' only
    with Meet events configured. The reads are counted either way (polling reads too)."""
    settings = app.extensions[REGISTRY_KEY].settings
    add_gauges(app, "meet_reads", read_gauges(settings))
    if settings.meet_events:
        add_gauges(app, "meet_subscriptions", subscription_gauges(settings))
