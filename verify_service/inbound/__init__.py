"""Webhooks from the account service: verified, deduplicated, and applied (profile updates, verification requests, closure)."""
