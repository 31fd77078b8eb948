"""Call sessions and outcomes."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from verify_service.accounts.models import new_id
from verify_service.calls.state import EndReason, Outcome, SessionStatus
from verify_service.db import Base, UTCDateTime, text_enum


class MeetingStatus(str, enum.Enum):
    NONE = "none"        # no meeting asked for yet
    QUEUED = "queued"    # every host user's creation budget is spent: created as soon as one frees up
    READY = "ready"      # the Meet space exists


class CallSession(Base):
    """One verification call: a Meet meeting, its queue position and its status."""

    __tablename__ = "call_sessions"
    __table_args__ = (
        # The reviewer queue: sessions of a status, oldest first.
        sa.Index("ix_call_sessions_status_created", "status", "created_at"),
        sa.Index("ix_call_sessions_account_created", "account_id", "created_at"),
        # The conference-ending job's scan: ends asked for and not yet done.
        # The queue of meetings waiting for Meet's creation budget.
        sa.Index("ix_call_sessions_meet_queued", "meet_queued_at",
                 sqlite_where=sa.text("meet_status = 'queued'"), postgresql_where=sa.text("meet_status = 'queued'")),
        sa.Index("ix_call_sessions_conference_end_pending", "conference_end_requested_at",
                 sqlite_where=sa.text("conference_end_requested_at IS NOT NULL AND conference_ended_at IS NULL"),
                 postgresql_where=sa.text("conference_end_requested_at IS NOT NULL AND conference_ended_at IS NULL")),
        # A Meet event's conference → its call (meet_events/apply.py), once per conference.
        sa.Index("ix_call_sessions_meet_space", "meet_space"),
        # The invite repair job's scan: calendar changes that did not reach Google yet.
        sa.Index("ix_call_sessions_invite_pending", "invite_retry_at",
                 sqlite_where=sa.text("invite_pending IS NOT NULL"),
                 postgresql_where=sa.text("invite_pending IS NOT NULL")),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(sa.ForeignKey("accounts.id"))
    verification_request_id: Mapped[str | None] = mapped_column(sa.ForeignKey("verification_requests.id"))
    status: Mapped[SessionStatus] = mapped_column(text_enum(SessionStatus, "session_status"))
    attempt: Mapped[int] = mapped_column(default=1)
    scheduled_for: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The Meet space (spaces/{id}), its join URI and code; set once the meeting exists.
    meet_space: Mapped[str | None] = mapped_column(sa.String(200))
    meet_uri: Mapped[str | None] = mapped_column(sa.String(500))
    meet_code: Mapped[str | None] = mapped_column(sa.String(50))
    meet_host: Mapped[str | None] = mapped_column(sa.String(320))
    meet_status: Mapped[MeetingStatus] = mapped_column(text_enum(MeetingStatus, "meeting_status"),
                                                       default=MeetingStatus.NONE, server_default="none")
    meet_queued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    meet_ready_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())  # the TTL counts from here
    invite_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    meet_error: Mapped[str | None] = mapped_column(sa.String(500))
    # While a process is creating the space (outside any transaction), others leave the session alone
    # until this time; a process that died mid-creation lets the lease run out and the queue job retries.
    meet_creating_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The calendar event of a scheduled call (on the host's calendar).
    calendar_event_id: Mapped[str | None] = mapped_column(sa.String(100))
    # A change to that event Google has not taken yet ("move" or "cancel"): the booking change stands,
    # and calls/invites.py keeps trying (attempts, the next try, the last error).
    invite_pending: Mapped[str | None] = mapped_column(sa.String(10))
    invite_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    invite_retry_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    invite_error: Mapped[str | None] = mapped_column(sa.String(500))
    # Attendance, from Meet's conference records (kept: Google deletes them after 30 days).
    freelancer_joined_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    freelancer_left_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    freelancer_connected_seconds: Mapped[int] = mapped_column(default=0, server_default="0")
    reviewer_joined_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    reviewer_left_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    reviewer_connected_seconds: Mapped[int] = mapped_column(default=0, server_default="0")
    attendance_synced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The last Meet event (Workspace Events push) applied to the session: reconciliation reads Meet
    # only for sessions with no event or read for a while (calls/attendance.py).
    meet_event_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # When attendance was last applied (a read, an event, or time passing): the job takes the longest unchecked first.
    attendance_checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The reviewer was there and the freelancer never came: the dashboard offers "no show".
    no_show_suggested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    claimed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("reviewers.id"))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The claimer's last action on the session (page, ID panel): an idle claim goes back to the queue.
    claim_active_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The freelancer's system check when the session opened ({verdict, browser, os, mobile}), for the queue.
    system_check: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    outcome: Mapped[Outcome | None] = mapped_column(text_enum(Outcome, "outcome_result"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # When the call ended: its first decision, or its expiry or cancel; a later second review never moves it.
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Why an expired or canceled session ended.
    end_reason: Mapped[EndReason | None] = mapped_column(text_enum(EndReason, "session_end_reason"))
    # The session was canceled while its conference could be live. Ending it is
    # an outbound call, so a job does it later (requests must answer fast) and
    # sets conference_ended_at once the gateway confirms.
    conference_end_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    conference_ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The ending job's lease while it asks Meet (no two schedulers ask twice; a dead run's lease lapses).
    conference_ending_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # How many of the configured appointment reminders (settings.reminder_minutes) went out.
    reminders_sent: Mapped[int] = mapped_column(default=0, server_default="0")


class OutcomeRecord(Base):
    """A reviewer's decision on a session; a fail becomes final only after a lead's second review."""

    __tablename__ = "outcomes"
    __table_args__ = (
        # "My sessions": what a reviewer decided lately, newest first.
        sa.Index("ix_outcomes_decided_by_decided_at", "decided_by_id", "decided_at"),
        # The second-review list: fails not final yet, oldest first (few rows among all outcomes).
        sa.Index("ix_outcomes_awaiting_second_review", "decided_at",
                 sqlite_where=sa.text("final IS 0"), postgresql_where=sa.text("final IS false")),
        # The leads' QA list: sampled passes not reviewed yet.
        sa.Index("ix_outcomes_qa_pending", "qa_sampled_at",
                 sqlite_where=sa.text("qa_sampled_at IS NOT NULL AND qa_decision IS NULL"),
                 postgresql_where=sa.text("qa_sampled_at IS NOT NULL AND qa_decision IS NULL")),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    # One decision per session: the database refuses a second (optimistic concurrency's last line).
    call_session_id: Mapped[str] = mapped_column(sa.ForeignKey("call_sessions.id"), index=True, unique=True)
    account_id: Mapped[str] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    result: Mapped[Outcome] = mapped_column(text_enum(Outcome, "outcome_result"))
    decided_by_id: Mapped[int] = mapped_column(sa.ForeignKey("reviewers.id"))
    decided_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # Personal data (the reviewer's notes); purged after the retention period.
    notes: Mapped[str | None] = mapped_column(sa.Text)
    # Codes from verify_service.review.reasons.REASONS (never free text).
    reason_codes: Mapped[list[str]] = mapped_column(sa.JSON, default=list, server_default=sa.text("'[]'"))
    # The checklist as the reviewer answered it: {question: ticked}.
    checklist: Mapped[dict[str, bool] | None] = mapped_column(sa.JSON)
    final: Mapped[bool] = mapped_column(default=False)
    second_reviewer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("reviewers.id"))
    second_decision: Mapped[str | None] = mapped_column(sa.String(20))
    second_decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Quality sampling of passes: chosen at random for a lead's look after the fact (the pass stands
    # until a lead other than its reviewer overturns it to a fail).
    qa_sampled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    qa_reviewer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("reviewers.id"))
    qa_decision: Mapped[str | None] = mapped_column(sa.String(20))  # confirmed | overturned
    qa_decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class CallParticipant(Base):
    """Who took part in a session's conferences (our copy of Meet's participant records)."""

    __tablename__ = "call_participants"
    __table_args__ = (sa.UniqueConstraint("call_session_id", "participant", name="uq_call_participants_session"),
                      # Whether a Meet event's participant is known already (meet_events/apply.py).
                      sa.Index("ix_call_participants_participant", "participant"))

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    call_session_id: Mapped[str] = mapped_column(sa.ForeignKey("call_sessions.id"), index=True)
    participant: Mapped[str] = mapped_column(sa.String(300))      # Meet's participant resource name
    kind: Mapped[str] = mapped_column(sa.String(20))              # signed_in | anonymous | phone
    role: Mapped[str] = mapped_column(sa.String(20))              # freelancer | reviewer | other
    google_user: Mapped[str | None] = mapped_column(sa.String(100))
    # Personal data: erased with the account.
    display_name: Mapped[str | None] = mapped_column(sa.String(200))
    first_joined_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_left_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    connected_seconds: Mapped[int] = mapped_column(default=0)


class CallConference(Base):
    """One conference held in a session's space (our copy of Meet's conference record)."""

    __tablename__ = "call_conferences"

    record: Mapped[str] = mapped_column(sa.String(200), primary_key=True)  # conferenceRecords/{id}
    call_session_id: Mapped[str] = mapped_column(sa.ForeignKey("call_sessions.id"), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class CallParticipantSession(Base):
    """One join-to-leave span of a participant (our copy of Meet's participant session).

    Written by a full read of the conference and by each join or leave event, in whatever order
    they come: a leave seen before its join keeps ``started_at`` empty until the join (or a read)
    fills it, and a time once known is never moved by an older report.
    """

    __tablename__ = "call_participant_sessions"

    name: Mapped[str] = mapped_column(sa.String(400), primary_key=True)  # …/participantSessions/{id}
    call_session_id: Mapped[str] = mapped_column(sa.ForeignKey("call_sessions.id"), index=True)
    record: Mapped[str] = mapped_column(sa.String(200))       # conferenceRecords/{c}
    participant: Mapped[str] = mapped_column(sa.String(300))  # conferenceRecords/{c}/participants/{p}
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class MeetHost(Base):
    """A Workspace user that creates meetings; locking the rows serialises budget checks."""

    __tablename__ = "meet_hosts"

    email: Mapped[str] = mapped_column(sa.String(320), primary_key=True)
    # Google answered 429 for this user: skip it until then.
    saturated_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class MeetSpaceCreation(Base):
    """One spaces.create charged to a host, for the per-minute budget."""

    __tablename__ = "meet_space_creations"
    __table_args__ = (sa.Index("ix_meet_space_creations_host_at", "host", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(sa.ForeignKey("meet_hosts.email"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
