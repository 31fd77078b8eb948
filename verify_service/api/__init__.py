"""The account-service REST API (DESIGN §4.1): authentication, idempotency, OpenAPI."""
