"""Webhooks both ways: the outbox of events to the account service, and inbound receipts."""
