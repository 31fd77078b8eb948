"""Operational state of the service's own processes (the scheduler's heartbeat)."""
