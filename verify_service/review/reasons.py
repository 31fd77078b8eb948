"""The catalogue of reason codes a reviewer gives with a decision, and which decisions take which.

Codes (never free text) travel in events and reports; the reviewer's own
words go in the notes, which stay inside the service.
"""

from __future__ import annotations

from collections.abc import Sequence

from verify_service.calls.state import Outcome
from verify_service.errors import InvalidInput

# Outcome → what the dashboard shows (the label catalogue, verify_service/labels.py, takes it from here).
OUTCOME_LABELS: dict[str, str] = {"passed": "Passed", "failed": "Failed", "inconclusive": "Inconclusive (may try again)",
                                  "no_show": "No show"}
# How a message names a decision of each outcome.
A_DECISION = {Outcome.PASSED: "a pass", Outcome.FAILED: "a fail", Outcome.INCONCLUSIVE: "an inconclusive decision",
               Outcome.NO_SHOW: "a no show"}
# Code → what the dashboard shows, in the order the form lists them.
REASONS: dict[str, str] = {
    "id_mismatch": "The ID does not match the person on camera",
    "profile_mismatch": "The person or ID does not match the profile (name, country, photo)",
    "document_not_shown": "No ID was shown, or not in full",
    "document_expired": "The ID has expired",
    "poor_video": "The video was too poor to tell",
    "refused_camera": "The freelancer would not turn the camera on",
    "suspected_duplicate": "The person seems to have another account",
    "connection_failed": "The connection failed",
    "other": "Something else (say what in the notes)",
}
# A fail or an inconclusive call must say why; a pass has nothing to explain.
NEEDS_REASON = frozenset({Outcome.FAILED, Outcome.INCONCLUSIVE})
TAKES_REASON = NEEDS_REASON | {Outcome.NO_SHOW}


def check_reasons(result: Outcome, codes: Sequence[str], notes: str | None) -> list[str]:
    """The codes, de-duplicated in catalogue order, once they fit ``result`` and the notes.

    Raises:
        InvalidInput: an unknown code; reasons given with a pass; none given
            with a fail or inconclusive; ``other`` without notes.
    """
    unknown = sorted(set(codes) - set(REASONS))
    if unknown:
        raise InvalidInput.for_field("reason_codes", "unknown reason " + ", ".join(repr(c[:40]) for c in unknown))
    chosen = [code for code in REASONS if code in set(codes)]
    if chosen and result not in TAKES_REASON:
        raise InvalidInput.for_field("reason_codes", f"{A_DECISION[result]} takes no reasons; untick them")
    if not chosen and result in NEEDS_REASON:
        raise InvalidInput.for_field("reason_codes", f"choose at least one reason: {A_DECISION[result]} must say why")
    if "other" in chosen and not (notes or "").strip():
        raise InvalidInput.for_field("notes", "say in the notes what the other reason is")
    return chosen
