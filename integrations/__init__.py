"""Adapters to the outside world, each behind a small interface with a sandbox twin.

Planned here (DESIGN §2): ``google_meet`` (Meet REST v2 + Calendar v3),
``account_service`` (outbound webhook sender), ``release_sources`` (browser and
OS release data) and the sandbox emulators used by the embedded default.
"""
