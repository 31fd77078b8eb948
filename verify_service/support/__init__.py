"""Browser and OS support: classification of user agents and the release catalog."""

from __future__ import annotations

import threading

from verify_service.support.classify import Classifier

_lock = threading.Lock()
_classifier: Classifier | None = None


def classifier() -> Classifier:
    """The process's classifier: the parser tables load once, at the first call (create_app makes it)."""
    global _classifier
    with _lock:
        if _classifier is None:
            _classifier = Classifier()
        return _classifier
