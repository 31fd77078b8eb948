"""The anchor of bench_restrictions.py: the least a Flask + SQLAlchemy app does to answer the same read.

One primary-key lookup of the account row (ORM, a session per request) and a
JSON response; no authentication, validation, logging of its own, metrics or
headers. It is served by gunicorn with the service's own server settings
(anchor_gunicorn.conf.py):

    ANCHOR_DATABASE_URL=postgresql+psycopg://... gunicorn -c tests/bench/anchor_gunicorn.conf.py \\
        "tests.bench.anchor_app:create_app()"
"""

from __future__ import annotations

import datetime as dt
import os

import sqlalchemy as sa
from flask import Flask, Response, abort, jsonify
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    verification_status: Mapped[str] = mapped_column(sa.String(32))
    verification_changed_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    restrictions_version: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))


def create_app() -> Flask:
    app = Flask(__name__)
    engine = sa.create_engine(os.environ["ANCHOR_DATABASE_URL"])

    @app.get("/api/v1/accounts/<account_id>/restrictions")
    def restrictions(account_id: str) -> Response:
        with Session(engine) as session:
            account = session.get(Account, account_id)
            if account is None:
                abort(404)
            changed = account.verification_changed_at
            return jsonify({"account_id": account.id, "version": account.restrictions_version,
                            "verification": {"status": account.verification_status,
                                             "changed_at": changed.isoformat() if changed else None},
                            "updated_at": account.updated_at.isoformat()})

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    return app
