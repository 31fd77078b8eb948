"""Lead pages: the metrics page (numbers for today, decisions, and two 30-day charts with their table)."""

from __future__ import annotations

import datetime as dt

from flask import render_template

from verify_service.leads.chart import bar_chart
from verify_service.leads.metrics import lead_metrics, minutes
from verify_service.leads.views import bp
from verify_service.registry import db_session, registry
from verify_service.staff.models import Role
from verify_service.review.quality import qa_figures
from verify_service.staff.auth import staff_page


@bp.get("/metrics")
@staff_page(Role.LEAD)
def metrics() -> str:
    now = registry().now()
    data = lead_metrics(db_session(), now=now)
    qa = qa_figures(db_session(), since=now - dt.timedelta(days=len(data.series)))
    labels = [p.day.strftime("%d %b") for p in data.series]
    first, last = labels[0], labels[-1]
    decisions = bar_chart(
        [(label, p.decisions) for label, p in zip(labels, data.series)], chart_id="chart-decisions",
        title=f"Decisions per day, {first} to {last}",
        description="Bar chart; the table 'Per day' below gives every value.")
    waits = bar_chart(
        [(label, None if p.median_wait is None else round(p.median_wait.total_seconds() / 60, 1))
         for label, p in zip(labels, data.series)], chart_id="chart-waits", unit="min",
        title=f"Median wait per day in minutes, {first} to {last}",
        description="Bar chart; the table 'Per day' below gives every value. Days without calls have no bar.")
    return render_template("review/lead/metrics.html", m=data, minutes=minutes, decisions_chart=decisions,
                           waits_chart=waits, qa=qa)
