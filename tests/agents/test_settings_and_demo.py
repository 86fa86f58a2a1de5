"""LiveKit settings (development defaults, the deploy checks), seed_demo's agent data, and
the placeholder templates."""

import json
import secrets
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from livekit.api import TokenVerifier

from agents import prompts
from agents.conf import agents_settings
from agents.errors import TemplateTooLong
from agents.models import Agent, Assistant
from tests.test_settings import PRODUCTION, manage


def test_development_defaults_are_livekits_dev_mode():
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings as s;"
        "print(s.LIVEKIT_URL, s.LIVEKIT_API_KEY, len(s.LIVEKIT_API_SECRET))",
    )
    assert result.returncode == 0, result.stderr
    url, key, secret_length = result.stdout.strip().splitlines()[-1].split()
    assert (url, key) == ("ws://127.0.0.1:7880", "devkey") and int(secret_length) >= 32


def test_production_has_no_livekit_defaults():
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings as s;"
        "print(repr((s.LIVEKIT_URL, s.LIVEKIT_API_KEY, s.LIVEKIT_API_SECRET)))",
        **PRODUCTION,
        DJANGO_SECURE_SSL_REDIRECT="false",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "('', '', '')"


def test_deploy_checks_refuse_the_development_secret():
    from django.conf import settings

    dev = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        **PRODUCTION,
        LIVEKIT_API_SECRET=settings.LIVEKIT_DEV_API_SECRET,
    )
    assert dev.returncode != 0 and "agents.E001" in dev.stderr
    short = manage(
        "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION, LIVEKIT_API_SECRET="short"
    )
    assert short.returncode != 0 and "agents.W001" in short.stderr
    good = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        **PRODUCTION,
        LIVEKIT_URL="wss://lk.example.com",
        LIVEKIT_API_KEY="APIxyz",
        LIVEKIT_API_SECRET=secrets.token_urlsafe(32),
    )
    assert good.returncode == 0, good.stdout + good.stderr


def test_agents_settings_are_read_at_call_time(settings):
    assert timedelta(hours=1) == agents_settings.VOICE_SESSION_TTL
    settings.ROOMKEY_AGENTS = {**settings.ROOMKEY_AGENTS, "VOICE_SESSION_TTL": timedelta(10)}
    assert timedelta(10) == agents_settings.VOICE_SESSION_TTL
    settings.ROOMKEY_AGENTS = {}
    assert agents_settings.VOICE_FRAME_MAX_BYTES == 64 * 1024


def test_seed_demo_json_adds_agent_and_livekit_values(db, settings, client_for):
    settings.DEBUG = True  # seed_demo is development-only
    out = StringIO()
    call_command("seed_demo", "--json", stdout=out)
    demo = json.loads(out.getvalue())
    assert {"agent_id", "version_id", "assistant_id"} <= set(demo)
    assert (demo["livekit_url"], demo["livekit_api_key"]) == ("ws://127.0.0.1:7880", "devkey")
    assert demo["livekit_api_secret"] == settings.LIVEKIT_API_SECRET
    agent = Agent.objects.get(pk=demo["agent_id"])
    assert str(agent.active_version_id) == demo["version_id"] and agent.active_version.is_published
    assert "{{name}}" in Assistant.objects.get(pk=demo["assistant_id"]).prompt_template
    # The printed values work as they are.
    api = client_for(demo["api_key"])
    body = api.post(
        "/v1/session-token", {"agent_id": demo["agent_id"], "transport": "webrtc"}, format="json"
    ).json()
    assert body["url"] == demo["livekit_url"]
    TokenVerifier(demo["livekit_api_key"], demo["livekit_api_secret"]).verify(body["token"])
    # Running it again reuses the demo agent and assistant.
    again = StringIO()
    call_command("seed_demo", "--json", stdout=again)
    second = json.loads(again.getvalue())
    assert [second[k] for k in ("agent_id", "version_id", "assistant_id")] == [
        demo[k] for k in ("agent_id", "version_id", "assistant_id")
    ]
    text = StringIO()
    call_command("seed_demo", stdout=text)
    assert demo["assistant_id"] in text.getvalue()


@pytest.mark.parametrize(
    ("template", "metadata", "expected"),
    [
        ("Hi {{name}}", {"name": "Ada"}, "Hi Ada"),
        ("Hi {{ name }}!", {"name": "Ada"}, "Hi Ada!"),
        ("{{a}}{{b}}{{c}}", {"a": 1, "b": 2.5, "c": False}, "12.5false"),
        ("[{{missing}}]", {}, "[]"),
        ("{{x}}", {"x": "{{y}}", "y": "no"}, "{{y}}"),  # one pass only
        ("{{not valid}} {name}", {"name": "n"}, "{{not valid}} {name}"),
    ],
)
def test_placeholders(template, metadata, expected):
    assert prompts.render(template, metadata) == expected


def test_render_stops_at_the_limit():
    with pytest.raises(TemplateTooLong):
        prompts.render("{{v}}" * 1000, {"v": "x" * 1000}, max_chars=10_000)
    assert prompts.render("{{v}}" * 10, {"v": "x" * 1000}, max_chars=10_000) == "x" * 10_000


def test_livekit_secret_stays_out_of_error_reports(project, rf):
    # Django's error reports (debug page, error emails) show local variables; `credentials`
    # is not a name its filter hides, so the secret must not be in the value's repr.
    import sys

    from django.views.debug import ExceptionReporter

    from agents import selectors
    from agents.models import LiveKitConfig

    # The secret is never a local of this test: its own frame is in the report too.
    LiveKitConfig.objects.create(
        project=project, url="wss://x", api_key="APIx", api_secret="s3cret-" + "q" * 40
    )
    try:
        credentials = selectors.livekit_credentials(project=project)
        raise RuntimeError(f"failed with {credentials.api_key}")
    except RuntimeError:
        data = ExceptionReporter(rf.get("/"), *sys.exc_info()).get_traceback_data()
    text = repr([frame["vars"] for frame in data["frames"]])
    assert "LiveKitCredentials(" in text and "api_key='APIx'" in text  # the local is shown
    assert "s3cret-" not in text
