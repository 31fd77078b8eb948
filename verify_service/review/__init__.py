"""Reviewers and leads: staff accounts, roles, and (later) the review dashboard."""
