"""The account-service REST API (docs/architecture.md, 'The API'): authentication, idempotency, OpenAPI."""
