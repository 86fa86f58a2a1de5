"""Settings come from the environment, pass the deploy checks in production, and Roomkey's own
settings are read at call time."""

import os
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from chat.conf import DEFAULTS as CHAT_DEFAULTS
from chat.conf import chat_settings
from tests.helpers import mint_chat
from tokens import services
from tokens.conf import DEFAULTS, roomkey_settings

ROOT = Path(__file__).resolve().parents[1]


def manage(*args, **env_overrides) -> subprocess.CompletedProcess:
    """Run manage.py in a fresh interpreter with only the given DJANGO_* / ROOMKEY_* variables
    (None leaves a variable unset)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "ROOMKEY_"))
    }
    env.update({name: value for name, value in env_overrides.items() if value is not None})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),  # 64 characters
    "DJANGO_ALLOWED_HOSTS": "roomkey.example.com",
}


def test_production_settings_pass_the_deploy_checks():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("change", "check_id"),
    [
        ({"DJANGO_ALLOWED_HOSTS": None}, "security.W020"),
        ({"DJANGO_SECURE_SSL_REDIRECT": "false"}, "security.W008"),
        ({"DJANGO_SECURE_HSTS_SECONDS": "0"}, "security.W004"),
        ({"DJANGO_SECRET_KEY": "too-short-and-too-simple"}, "security.W009"),
        ({"DJANGO_DEBUG": "true"}, "security.W018"),
    ],
)
def test_deploy_checks_catch_a_weakened_production_config(change, check_id):
    # The passing run above means something only if the same check fails on a weaker config.
    result = manage("check", "--deploy", "--fail-level", "WARNING", **{**PRODUCTION, **change})
    assert result.returncode != 0
    assert check_id in result.stderr


@pytest.mark.parametrize("secret_key", [None, ""])
def test_production_refuses_to_start_without_a_secret_key(secret_key):
    env = {**PRODUCTION, "DJANGO_SECRET_KEY": secret_key}
    result = manage("check", "--deploy", **env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false" in result.stderr


def test_roomkey_settings_come_from_the_environment():
    result = manage(
        "shell",
        "-c",
        "from tokens.conf import roomkey_settings as s; from chat.conf import chat_settings as c;"
        "print(s.TOKEN_RETENTION.days, s.CLEAR_BATCH_SIZE, c.RELAY_URL)",
        DJANGO_SECRET_KEY=PRODUCTION["DJANGO_SECRET_KEY"],
        ROOMKEY_TOKEN_RETENTION_DAYS="7",
        ROOMKEY_CLEAR_BATCH_SIZE="25",
        ROOMKEY_CHAT_RELAY_URL="wss://relay.example.com/ws",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["7", "25", "wss://relay.example.com/ws"]


# --- Read at call time ----------------------------------------------------------------------


# Each app's settings object, with its defaults, by the settings dict it reads.
APP_SETTINGS = {
    "ROOMKEY": (roomkey_settings, DEFAULTS),
    "ROOMKEY_CHAT": (chat_settings, CHAT_DEFAULTS),
}


@pytest.mark.parametrize(
    ("namespace", "name", "value"),
    [
        ("ROOMKEY", "TOKEN_RETENTION", timedelta(hours=3)),
        ("ROOMKEY", "CLEAR_BATCH_SIZE", 7),
        ("ROOMKEY", "MAX_TOKEN_BYTES", 123),  # absent from settings.ROOMKEY: a default until set
        ("ROOMKEY", "API_KEY_TOUCH_SECONDS", 1),
        ("ROOMKEY_CHAT", "RELAY_URL", "wss://elsewhere.example.com/ws"),
        ("ROOMKEY_CHAT", "AUTH_TIMEOUT_SECONDS", 1.5),
        ("ROOMKEY_CHAT", "MAX_FRAME_BYTES", 1024),
        ("ROOMKEY_CHAT", "RECHECK_SECONDS", 2.0),
    ],
)
def test_changing_settings_changes_the_apps_settings(settings, namespace, name, value):
    app_settings, defaults = APP_SETTINGS[namespace]
    before = getattr(app_settings, name)  # read first, so a stale cache would show
    assert before == {**defaults, **getattr(settings, namespace)}[name]
    assert before != value
    setattr(settings, namespace, {**getattr(settings, namespace), name: value})
    assert getattr(app_settings, name) == value


def test_removing_roomkey_settings_falls_back_to_the_defaults(settings):
    settings.ROOMKEY = {**settings.ROOMKEY, "CLEAR_BATCH_SIZE": 7}
    assert roomkey_settings.CLEAR_BATCH_SIZE == 7
    settings.ROOMKEY = {}
    current = {name: getattr(roomkey_settings, name) for name in DEFAULTS}
    assert current == DEFAULTS


def test_an_unknown_roomkey_setting_is_an_error():
    with pytest.raises(AttributeError, match="NO_SUCH_SETTING"):
        roomkey_settings.NO_SUCH_SETTING  # noqa: B018


def test_services_use_the_current_value(settings, project):
    issued = mint_chat(project, member_id="alice")
    assert services.token_verify(issued.token).valid
    settings.ROOMKEY = {**settings.ROOMKEY, "MAX_TOKEN_BYTES": len(issued.token) - 1}
    assert services.token_verify(issued.token).reason == "oversize"
    settings.ROOMKEY = {**settings.ROOMKEY, "MAX_TOKEN_BYTES": len(issued.token)}
    assert services.token_verify(issued.token).valid
