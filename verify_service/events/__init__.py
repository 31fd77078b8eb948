"""The events API: the outbox as a feed the account service can page through (catch-up, reconciliation)."""
