"""Running ``verify-service`` commands in-process (click's runner) against a test's database, either backend."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from tests.conftest import DATA_KEY, make_settings
from verify_service.cli import main


def run_cli(database_url: str, tmp_path: Path, *args: str, input: str | None = None, **env: str) -> Result:
    """``verify-service ARGS`` with the settings of the test app (``make_settings``); ``env`` overrides them."""
    settings = make_settings(database_url, tmp_path)
    environ = {
        "VERIFY_ENV": "testing",
        "VERIFY_DATABASE_URL": database_url,
        "VERIFY_INSTANCE_DIR": str(settings.instance_dir),
        "VERIFY_SECRET_KEY": settings.secret_key,
        "VERIFY_API_KEYS": ",".join(settings.api_keys),
        "VERIFY_DATA_KEYS": DATA_KEY,
        "VERIFY_AUDIT_CHECKPOINT_KEY": settings.audit_checkpoint_key,
        "VERIFY_LOG_FORMAT": "text",
    }
    return CliRunner().invoke(main, list(args), input=input, env={**environ, **env}, catch_exceptions=False)
