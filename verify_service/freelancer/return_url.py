"""The launch link's ``return_url``: where the freelancer's "Back to <marketplace>" link points.

The account service names it; its origin (scheme, host and port) must be one of
``VERIFY_RETURN_URL_ORIGINS`` (README, "Configuration"), so a launch link can
never be turned into a way to send a freelancer to someone else's site. With
no origins configured every ``return_url`` is refused; an entry that is not an
origin stops the service at start (``settings.check``). Origins are compared normalised (lower case,
the scheme's default port left out).
"""

from __future__ import annotations

from verify_service.errors import InvalidInput
from verify_service.freelancer.models import RETURN_URL_MAX
from verify_service.settings import Settings, origin_of

def check_return_url(url: str, settings: Settings) -> str:
    """``url`` once it may be the pages' way back. Raises: InvalidInput (naming ``return_url``)."""
    if len(url) > RETURN_URL_MAX or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise InvalidInput.for_field("return_url", f"must be a URL of at most {RETURN_URL_MAX} characters, "
                                                   "without spaces or control characters")
    origin = origin_of(url)
    if origin is None:
        raise InvalidInput.for_field("return_url", "must be an absolute http(s) URL with a host and no "
                                                   "user name or password")
    if settings.is_production and not origin.startswith("https://"):
        raise InvalidInput.for_field("return_url", "must be an https:// URL")
    allowed = {origin_of(o) for o in settings.return_url_origins}
    if origin not in allowed:
        raise InvalidInput.for_field("return_url", f"its origin {origin} is not one of VERIFY_RETURN_URL_ORIGINS")
    return url
