"""Simulated calls for the account service's integration tests (README, "Testing your integration end to end")."""
