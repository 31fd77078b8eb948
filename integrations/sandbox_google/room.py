"""Sandbox pages: the meeting room a ``meetingUri`` opens, and the page a calendar ``htmlLink`` opens.

People (or browser tests) join and leave the room with plain forms; each
form carries a token signed with the app's ``SECRET_KEY`` and bound to the
meeting code and the form, so another site cannot make someone join or leave.
Every page says it is a sandbox: no Google Meet is involved.
"""

from __future__ import annotations

from flask import Response, current_app, redirect, render_template, request, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer

from integrations.sandbox_google.blueprint import bp, store
from integrations.sandbox_google.errors import RoomError, SandboxApiError
from integrations.sandbox_google.shapes import RoomView

TOKEN_MAX_AGE = 12 * 60 * 60  # a room page left open for a working day still works
JOIN_AS = ("freelancer", "reviewer", "anonymous")


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="sandbox-google.meeting-room")


def form_token(meeting_code: str, form: str) -> str:
    """The token ``form`` ("join" or "leave") of the room ``meeting_code`` must carry."""
    return _serializer().dumps([meeting_code, form])


def _check_token(meeting_code: str, form: str) -> None:
    """Raises: RoomError 400 when the form's token is missing, forged, expired or for another form."""
    try:
        bound = _serializer().loads(request.form.get("csrf_token", ""), max_age=TOKEN_MAX_AGE)
    except BadSignature:
        bound = None
    if bound != [meeting_code, form]:
        raise RoomError(400, "This form has expired",
                        "The form's security token is missing or not valid. Reload the meeting room and try again.")


def _room(meeting_code: str) -> RoomView:
    room = store().room(meeting_code)
    if room is None:
        raise RoomError(404, "No such sandbox meeting",
                        f"There is no sandbox meeting with the code {meeting_code!r}. Sandbox meetings live in "
                        "memory, so they are gone after the service restarts.")
    return room


def _default_email(room: RoomView, role: str | None) -> str:
    return next((m.email for m in room.members if m.role == role), "")


@bp.get("/sandbox/meet/<meeting_code>")
def meeting_room(meeting_code: str) -> Response:
    room = _room(meeting_code.lower())
    html = render_template(
        "sandbox/meeting_room.html", room=room,
        join_token=form_token(room.meeting_code, "join"), leave_token=form_token(room.meeting_code, "leave"),
        freelancer_email=_default_email(room, None), reviewer_email=_default_email(room, "COHOST"))
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"  # who is in the room changes all the time
    return response


@bp.post("/sandbox/meet/<meeting_code>/join")
def join_meeting(meeting_code: str) -> Response:
    room = _room(meeting_code.lower())
    _check_token(room.meeting_code, "join")
    joining_as = request.form.get("as", "")
    if joining_as not in JOIN_AS:
        raise RoomError(400, "Cannot join", f"Join as one of: {', '.join(JOIN_AS)}.")
    anonymous = joining_as == "anonymous"
    try:
        store().join(room.meeting_code, email=None if anonymous else request.form.get("email"),
                     display_name=request.form.get("display_name", ""), signed_in=not anonymous,
                     label=None if anonymous else joining_as)
    except ValueError:
        raise RoomError(400, "Cannot join", "Give a display name, and an email to join as freelancer "
                                            "or reviewer.") from None
    return redirect(url_for(".meeting_room", meeting_code=room.meeting_code), code=303)


@bp.post("/sandbox/meet/<meeting_code>/leave")
def leave_meeting(meeting_code: str) -> Response:
    room = _room(meeting_code.lower())
    _check_token(room.meeting_code, "leave")
    participant = request.form.get("participant", "")
    if participant not in {person.participant for person in room.present}:
        raise RoomError(400, "Cannot leave", "That person is not in this meeting (any more).")
    try:
        store().leave(participant)
    except SandboxApiError:  # left in the meantime: what the form asked for
        pass
    return redirect(url_for(".meeting_room", meeting_code=room.meeting_code), code=303)


@bp.get("/sandbox/calendar/event")
def calendar_event() -> str:
    event = store().calendar.find_by_eid(request.args.get("eid", ""))
    if event is None:
        raise RoomError(404, "No such sandbox calendar event",
                        "This sandbox calendar event does not exist (sandbox events live in memory).")
    return render_template("sandbox/calendar_event.html", event=event)
