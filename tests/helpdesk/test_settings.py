"""Settings: production is strict, the embedded default shares its cache between processes, and loading the
settings writes nothing anywhere."""

import os
import subprocess
import sys

from cryptography.fernet import Fernet

from tests.helpers import ROOT

#: What a developer's or CI's shell sets for the tests, which a production process would not have.
DEV_ONLY = {"DJANGO_DEBUG", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE", "SECRET_KEY"}
#: Unset, the helpdesk runs on its embedded default (SQLite, a filesystem broker, a file cache).
SERVICES = frozenset({"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL"})


def run_python(args, tmp_path, *, without=frozenset(), **env):
    """Run Python in the project folder without the test settings (and ``without`` these variables), its data
    folder under ``tmp_path``, with ``env`` added."""
    base = {key: value for key, value in os.environ.items() if key not in DEV_ONLY | without}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**base, "VAR_DIR": str(tmp_path / "var"), **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    """`manage.py check --deploy` reports nothing with production environment variables."""
    result = run_python(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        tmp_path,
        SECRET_KEY="x" * 20 + "-production-secret-key-with-enough-entropy-0123456789",
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="helpdesk.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_is_clean_with_single_sign_on_on(tmp_path):
    """The same, with SSO configured by its endpoints (no discovery document is fetched)."""
    endpoints = {
        f"OIDC_OP_{name}": f"https://id.example.com/{name.lower()}"
        for name in ("AUTHORIZATION_ENDPOINT", "TOKEN_ENDPOINT", "USER_ENDPOINT", "JWKS_ENDPOINT")
    }
    result = run_python(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        tmp_path,
        SECRET_KEY="x" * 20 + "-production-secret-key-with-enough-entropy-0123456789",
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="helpdesk.example.com",
        OIDC_RP_CLIENT_ID="helpdesk",
        OIDC_RP_CLIENT_SECRET="secret",
        **endpoints,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key(tmp_path):
    result = run_python(["manage.py", "check"], tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_the_embedded_default_cache_is_shared_between_processes(tmp_path):
    """Presence lives in the cache, so the embedded default must not use a per-process (locmem) cache."""
    code = (
        "import django; django.setup(); from django.conf import settings; print(settings.CACHES['default']['BACKEND'])"
    )
    result = run_python(
        ["-c", code], tmp_path, without=SERVICES, DJANGO_SETTINGS_MODULE="helpdesk.settings", DJANGO_DEBUG="1"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.core.cache.backends.filebased.FileBasedCache"


def test_loading_the_embedded_settings_creates_no_folder(tmp_path):
    """The data folder (SQLite, broker, cache, media) is made by whoever runs the helpdesk (bin/run-embedded),
    not as a side effect of importing the settings."""
    result = run_python(
        ["-c", "import django; django.setup(); import helpdesk.celery"],
        tmp_path,
        without=SERVICES,
        DJANGO_DEBUG="1",
        DJANGO_SETTINGS_MODULE="helpdesk.settings",
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "var").exists()


def test_the_in_memory_test_channel_is_not_offered_outside_the_tests(tmp_path):
    """``locmem`` keeps messages in one process's memory: only the tests register it (tests/conftest.py)."""
    code = "import django; django.setup(); from django.conf import settings; print(sorted(settings.CHANNEL_ADAPTERS))"
    result = run_python(
        ["-c", code], tmp_path, without=SERVICES, DJANGO_SETTINGS_MODULE="helpdesk.settings", DJANGO_DEBUG="1"
    )
    assert result.returncode == 0, result.stderr
    assert "slack" in result.stdout
    assert "locmem" not in result.stdout
