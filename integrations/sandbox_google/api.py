"""The emulated HTTP APIs, at the paths of the discovery documents.

Meet REST v2 is served under ``/sandbox/google/meet/`` and Calendar v3 under
``/sandbox/google/calendar/v3/`` (``SANDBOX_MEET_PATH`` and ``SANDBOX_CALENDAR_PATH``
in ``verify_service/settings.py``, where the settings' ``meet_api_endpoint`` and
``calendar_api_endpoint`` point by default). No credentials are asked for; the real gateway's
sandbox credentials name the host user (``Bearer sandbox:<email>``), which makes it the owner of the
spaces it creates (whose Meet events its subscription delivers). System parameters
(``alt``, ``$.xgafv``, ``prettyPrint``, ``fields``…) are accepted and ignored.
"""

from __future__ import annotations

from flask import Response, jsonify, request, url_for

from integrations.sandbox_google.blueprint import bp, caller, list_args, request_body, store
from integrations.sandbox_google.calendar import send_updates_value
from integrations.sandbox_google.errors import not_found
from verify_service.settings import SANDBOX_CALENDAR_PATH, SANDBOX_MEET_PATH

MEET = f"{SANDBOX_MEET_PATH}v2"
CALENDAR = f"{SANDBOX_CALENDAR_PATH}calendars/<calendar_id>/events"


# ---------------------------------------------------------------- Meet: spaces and members

@bp.post(f"{MEET}/spaces")
def create_space() -> Response:
    room_url = request.url_root + "sandbox/meet/"  # the sandbox meeting room, on the host the client called
    return jsonify(store().meet.create_space(request_body(), room_url, owner=caller()))


@bp.get(f"{MEET}/spaces/<space>")
def get_space(space: str) -> Response:
    return jsonify(store().meet.get_space(space))


@bp.patch(f"{MEET}/spaces/<space>")
def patch_space(space: str) -> Response:
    return jsonify(store().meet.patch_space(space, request_body(), request.args.get("updateMask")))


@bp.post(f"{MEET}/spaces/<space>")
def space_action(space: str) -> Response:
    """``spaces/{id}:endActiveConference`` — the custom method rides on the last path segment."""
    space_id, _, verb = space.partition(":")
    if verb != "endActiveConference":
        raise not_found(f"method spaces/{space}")
    request_body()  # an EndActiveConferenceRequest: empty, but it must parse
    return jsonify(store().meet.end_active_conference(space_id))


@bp.post(f"{MEET}/spaces/<space>/members")
def create_member(space: str) -> Response:
    return jsonify(store().meet.create_member(space, request_body()))


@bp.get(f"{MEET}/spaces/<space>/members")
def list_members(space: str) -> Response:
    _, size, token = list_args()
    return jsonify(store().meet.list_members(space, size, token))


@bp.get(f"{MEET}/spaces/<space>/members/<member>")
def get_member(space: str, member: str) -> Response:
    return jsonify(store().meet.get_member(space, member))


@bp.delete(f"{MEET}/spaces/<space>/members/<member>")
def delete_member(space: str, member: str) -> Response:
    return jsonify(store().meet.delete_member(space, member))


# ---------------------------------------------------------------- Meet: conference records

@bp.get(f"{MEET}/conferenceRecords")
def list_records() -> Response:
    return jsonify(store().meet.list_records(*list_args()))


@bp.get(f"{MEET}/conferenceRecords/<record>")
def get_record(record: str) -> Response:
    return jsonify(store().meet.get_record(record))


@bp.get(f"{MEET}/conferenceRecords/<record>/participants")
def list_participants(record: str) -> Response:
    return jsonify(store().meet.list_participants(record, *list_args()))


@bp.get(f"{MEET}/conferenceRecords/<record>/participants/<participant>")
def get_participant(record: str, participant: str) -> Response:
    return jsonify(store().meet.get_participant(record, participant))


@bp.get(f"{MEET}/conferenceRecords/<record>/participants/<participant>/participantSessions")
def list_sessions(record: str, participant: str) -> Response:
    return jsonify(store().meet.list_sessions(record, participant, *list_args()))


@bp.get(f"{MEET}/conferenceRecords/<record>/participants/<participant>/participantSessions/<session>")
def get_session(record: str, participant: str, session: str) -> Response:
    return jsonify(store().meet.get_session(record, participant, session))


# ---------------------------------------------------------------- Calendar: events

def _send_updates() -> str:
    return send_updates_value(request.args.get("sendUpdates"), request.args.get("sendNotifications"))


@bp.post(CALENDAR)
def insert_event(calendar_id: str) -> Response:
    send_updates = _send_updates()
    event_page = url_for("sandbox_google.calendar_event", _external=True)
    return jsonify(store().calendar.insert(calendar_id, request_body(calendar=True), send_updates, event_page))


@bp.get(f"{CALENDAR}/<event_id>")
def get_event(calendar_id: str, event_id: str) -> Response:
    return jsonify(store().calendar.get(calendar_id, event_id))


@bp.patch(f"{CALENDAR}/<event_id>")
def patch_event(calendar_id: str, event_id: str) -> Response:
    send_updates = _send_updates()
    return jsonify(store().calendar.patch(calendar_id, event_id, request_body(calendar=True), send_updates))


@bp.delete(f"{CALENDAR}/<event_id>")
def delete_event(calendar_id: str, event_id: str) -> Response:
    store().calendar.delete(calendar_id, event_id, _send_updates())
    return Response(status=204)
