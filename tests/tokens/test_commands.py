"""The management commands, through call_command: thin wrappers over the services."""

import json
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from django.utils import timezone

from tests.helpers import mint_chat
from tokens import crypto, services
from tokens.kinds import Decoded
from tokens.models import ApiKey, IssuedToken, Project, SigningKey
from tokens.selectors import DEMO_PROJECT_NAME


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def run_json(*args) -> dict:
    out = run(*args, "--json")
    assert out.count("\n") == 1 and out.endswith("\n"), out  # one line, one object
    result = json.loads(out)
    assert isinstance(result, dict)
    return result


def chat_token(project, member_id):
    return mint_chat(project, member_id=member_id)


def tool_row(project, subject, jti=None):
    now = int(timezone.now().timestamp())
    return services.record_issued(
        project=project,
        decoded=Decoded(
            kind="tool",
            jti=jti or crypto.new_jti(),
            project_id=str(project.pk),
            subject=subject,
            issued_at=now,
            expires_at=now + 600,
        ),
    )


# --- seed_demo ------------------------------------------------------------------------------


@pytest.fixture
def debug(settings):
    settings.DEBUG = True


def test_seed_demo_is_idempotent_and_issues_a_fresh_key_and_password(db, debug):
    first = run_json("seed_demo")
    second = run_json("seed_demo")

    assert Project.objects.filter(name=DEMO_PROJECT_NAME).count() == 1
    demo = Project.objects.get(name=DEMO_PROJECT_NAME)
    assert first["project_id"] == second["project_id"] == str(demo.pk)
    assert SigningKey.objects.filter(project=demo, active=True).count() == 1

    users = get_user_model().objects.filter(username=first["admin_username"])
    assert users.count() == 1
    assert first["admin_username"] == second["admin_username"]

    assert first["api_key"] != second["api_key"]
    for result in (first, second):
        key = services.api_key_authenticate(raw=result["api_key"], project_id=str(demo.pk))
        assert key is not None and key.project == demo

    # The password is new on every run; only the last one works.
    assert first["admin_password"] != second["admin_password"]
    user = login(second["admin_username"], second["admin_password"])
    assert user is not None and user.is_staff and user.is_superuser
    assert login(first["admin_username"], first["admin_password"]) is None


def login(username, password):
    """Django's authentication as the admin's login form runs it (django-axes needs the
    request)."""
    request = RequestFactory().post("/admin/login/", REMOTE_ADDR="127.0.0.1")
    return authenticate(request, username=username, password=password)


def test_seed_demo_json_is_one_object_with_the_credentials(db, debug):
    result = run_json("seed_demo")
    assert {"project_id", "api_key", "admin_username", "admin_password"} <= set(result)
    assert uuid.UUID(result["project_id"])
    assert crypto.api_key_prefix(result["api_key"]) is not None
    assert login(result["admin_username"], result["admin_password"])


def test_seed_demo_prints_what_a_developer_needs(db, debug):
    out = run("seed_demo", "--base-url", "http://demo.test:9000/")
    demo = Project.objects.get(name=DEMO_PROJECT_NAME)
    key = ApiKey.objects.filter(project=demo).get()
    raw = next(word for word in out.split() if word.startswith(f"rk_{key.prefix}_"))
    assert services.api_key_authenticate(raw=raw) == key
    assert str(demo.pk) in out
    assert "http://demo.test:9000/admin/" in out
    assert "http://demo.test:9000/api/chat/tokens" in out


def test_seed_demo_refuses_without_debug(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="development only"):
        run("seed_demo", "--json")
    assert not Project.objects.filter(name=DEMO_PROJECT_NAME).exists()
    assert not get_user_model().objects.exists()


# --- createproject --------------------------------------------------------------------------


def test_createproject_json(db):
    result = run_json("createproject", "Initech")
    project = Project.objects.get(name="Initech")
    assert result["project_id"] == str(project.pk)
    key = services.api_key_authenticate(raw=result["api_key"], project_id=result["project_id"])
    assert key is not None and key.project == project
    assert SigningKey.objects.filter(project=project, active=True).count() == 1


def test_createproject_prints_the_id_and_the_key_once(db):
    out = run("createproject", "  Initech  ")
    project = Project.objects.get(name="Initech")
    assert f"Project id: {project.pk}" in out
    raw = out.split("API key (shown once): ", 1)[1].split()[0]
    assert services.api_key_authenticate(raw=raw).project == project
    assert out.count(raw) == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Acme", "exists already"),
        ("  Acme ", "exists already"),
        ("", "1 to 200 characters"),
        ("   ", "1 to 200 characters"),
        ("x" * 201, "1 to 200 characters"),
    ],
)
def test_createproject_refuses_bad_names(project, name, message):
    with pytest.raises(CommandError, match=message):
        run("createproject", name)
    assert list(Project.objects.values_list("name", flat=True)) == ["Acme"]
    assert ApiKey.objects.count() == 1
    assert SigningKey.objects.count() == 1


def test_createproject_takes_the_longest_allowed_name(db):
    run_json("createproject", "x" * 200)
    assert Project.objects.filter(name="x" * 200).exists()


# --- createapikey ---------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["id", "name"])
def test_createapikey_by_project_id_or_name(project, other_project_and_key, by):
    selector = str(project.pk) if by == "id" else project.name
    result = run_json("createapikey", "--project", selector, "--name", "ci")
    assert result["project_id"] == str(project.pk)
    key = services.api_key_authenticate(raw=result["api_key"], project_id=str(project.pk))
    assert key is not None
    assert (key.project, key.name, key.expires_at) == (project, "ci", None)
    assert ApiKey.objects.filter(project=other_project_and_key[0]).count() == 1


def test_createapikey_prints_the_key(project):
    out = run("createapikey", "--project", "Acme")
    raw = out.strip().splitlines()[-1]
    assert services.api_key_authenticate(raw=raw).project == project


def test_createapikey_expires_in_days(project):
    before = timezone.now()
    result = run_json("createapikey", "--project", "Acme", "--expires-in-days", "7")
    after = timezone.now()
    key = ApiKey.objects.get(prefix=crypto.api_key_prefix(result["api_key"]))
    assert before + timedelta(days=7) <= key.expires_at <= after + timedelta(days=7)
    assert services.api_key_authenticate(raw=result["api_key"]) == key


@pytest.mark.parametrize(
    "args",
    [
        ["--project", "Nope"],
        ["--project", str(uuid.uuid4())],
        ["--project", "Acme", "--expires-in-days", "0"],
        ["--project", "Acme", "--expires-in-days", "-3"],
        ["--project", "Acme", "--expires-in-days", "soon"],
        ["--project", "Acme", "--expires-in-days", "100000000"],
    ],
)
def test_createapikey_refuses_bad_input(project, args):
    with pytest.raises(CommandError):
        run("createapikey", *args)
    assert ApiKey.objects.count() == 1


# --- revoketokens ---------------------------------------------------------------------------


@pytest.fixture
def issued(project, other_project_and_key):
    """jti by name: two tokens of alice and one of bob in Acme, a tool token in Acme, and a
    token of another alice in Other."""
    other = other_project_and_key[0]
    rows = {
        "alice1": chat_token(project, "alice").row,
        "alice2": chat_token(project, "alice").row,
        "bob": chat_token(project, "bob").row,
        "tool": tool_row(project, "call-1"),
        "other_alice": chat_token(other, "alice").row,
    }
    return {name: row.jti for name, row in rows.items()}


def revoked_names(issued) -> set[str]:
    revoked = set(IssuedToken.objects.revoked().values_list("jti", flat=True))
    return {name for name, jti in issued.items() if jti in revoked}


@pytest.mark.parametrize(
    ("args", "selected"),
    [
        # --jti=VALUE: a jti may start with "-" (see the test below).
        (["--jti={alice1}"], {"alice1"}),
        (["--jti={alice1}", "--jti={bob}"], {"alice1", "bob"}),
        (["--subject", "alice"], {"alice1", "alice2", "other_alice"}),
        (["--subject", "alice", "--project", "Acme"], {"alice1", "alice2"}),
        (["--project", "Acme"], {"alice1", "alice2", "bob", "tool"}),
        (["--project", "{other_project_id}"], {"other_alice"}),
        (["--project", "Acme", "--kind", "chat"], {"alice1", "alice2", "bob"}),
        (["--subject", "call-1", "--kind", "chat"], set()),
        (["--jti={other_alice}", "--project", "Acme"], set()),
    ],
)
def test_revoketokens_dry_run_then_yes(issued, other_project_and_key, args, selected):
    names = {**issued, "other_project_id": str(other_project_and_key[0].pk)}
    args = [a.format(**names) for a in args]

    out = run("revoketokens", *args)
    assert f"Would revoke {len(selected)} token(s)" in out
    for name in selected:
        assert issued[name] in out
    assert revoked_names(issued) == set()

    out = run("revoketokens", *args, "--yes", "--reason", "lost laptop")
    assert f"Revoked {len(selected)} token(s)" in out
    assert revoked_names(issued) == selected
    for row in IssuedToken.objects.filter(pk__in=[issued[n] for n in selected]):
        assert (row.revoked_by, row.revoke_reason) == ("cli", "lost laptop")


def test_revoketokens_skips_tokens_revoked_already(issued):
    assert services.token_revoke(jti=issued["alice1"], by="earlier", reason="first")
    first = IssuedToken.objects.get(pk=issued["alice1"])

    selector = ["--subject", "alice", "--project", "Acme"]
    assert "Would revoke 1 token(s)" in run("revoketokens", *selector)
    out = run("revoketokens", *selector, "--yes")
    assert "Revoked 1 token(s)" in out
    again = IssuedToken.objects.get(pk=issued["alice1"])
    assert (again.revoked_at, again.revoked_by) == (first.revoked_at, "earlier")
    assert revoked_names(issued) == {"alice1", "alice2"}


def test_revoketokens_revoked_tokens_stop_verifying(project):
    token = chat_token(project, "alice")
    assert services.token_verify(token.token).valid
    run("revoketokens", f"--jti={token.row.jti}", "--yes")
    assert services.token_verify(token.token).reason == "revoked"


def test_revoketokens_takes_a_jti_that_starts_with_a_dash_as_jti_equals(project):
    row = tool_row(project, "call-1", jti="-" + crypto.new_jti()[1:])
    run("revoketokens", f"--jti={row.jti}", "--yes")
    assert IssuedToken.objects.get(pk=row.jti).revoked_at is not None


def test_revoketokens_takes_every_minted_jti_as_printed(project):
    # `--jti <jti>` as printed by the dry run and the admin. argparse reads a value that starts
    # with "-" as an option, and token_urlsafe starts with "-" once in 64 draws (4096 draws
    # miss it with probability 1e-28), so such a jti is tried whenever one can be minted.
    minted = [crypto.new_jti() for _ in range(4096)]
    for jti in {minted[0], *[j for j in minted if j.startswith("-")][:1]}:
        tool_row(project, "call-1", jti=jti)
        run("revoketokens", "--jti", jti, "--yes")
        assert IssuedToken.objects.get(pk=jti).revoked_at is not None


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--yes"],
        ["--kind", "chat", "--yes"],
        ["--project", "Nope", "--yes"],
        ["--project", str(uuid.uuid4()), "--yes"],
        ["--project", "Acme", "--kind", "no-such-kind", "--yes"],
    ],
)
def test_revoketokens_refuses_without_a_valid_selector(issued, args):
    with pytest.raises(CommandError):
        run("revoketokens", *args)
    assert revoked_names(issued) == set()


# --- cleartokens ----------------------------------------------------------------------------

# Expiry of each row relative to now, and whether it was revoked.
AGES = {
    "month": (timedelta(days=-31), False),
    "week_revoked": (timedelta(days=-8), True),
    "week": (timedelta(days=-8), False),
    "three_days": (timedelta(days=-3), False),
    "two_days": (timedelta(days=-2), False),
    "day_and_hour": (timedelta(days=-1, hours=-1), False),
    "day_and_hour_revoked": (timedelta(days=-1, hours=-1), True),
    "hours": (timedelta(hours=-23), False),
    "minute": (timedelta(minutes=-1), False),
    "live": (timedelta(hours=1), False),
}


@pytest.fixture
def aged(project):
    now = timezone.now()
    jtis = {}
    for i, (name, (offset, revoked)) in enumerate(AGES.items()):
        jti = chat_token(project, f"member-{i}").row.jti
        if revoked:
            services.token_revoke(jti=jti, by="test")
        IssuedToken.objects.filter(pk=jti).update(expires_at=now + offset)
        jtis[name] = jti
    return jtis


@pytest.mark.parametrize(
    ("retention", "batch_size", "deleted"),
    [
        (timedelta(days=1), 3, {"month", "week_revoked", "week", "three_days", "two_days",
                                "day_and_hour", "day_and_hour_revoked"}),
        (timedelta(days=1), 1, {"month", "week_revoked", "week", "three_days", "two_days",
                                "day_and_hour", "day_and_hour_revoked"}),
        (timedelta(days=7), 3, {"month", "week_revoked", "week"}),
        (timedelta(days=30), 3, {"month"}),
        (timedelta(days=60), 3, set()),
        (timedelta(0), 3, set(AGES) - {"live"}),
        (timedelta(0), 1000, set(AGES) - {"live"}),
    ],
)  # fmt: skip
def test_cleartokens_deletes_rows_expired_longer_than_the_retention(
    settings, aged, retention, batch_size, deleted
):
    settings.ROOMKEY = {
        **settings.ROOMKEY,
        "TOKEN_RETENTION": retention,
        "CLEAR_BATCH_SIZE": batch_size,
    }
    out = run("cleartokens")
    assert f"Deleted {len(deleted)} token row(s)" in out
    remaining = set(IssuedToken.objects.values_list("jti", flat=True))
    assert remaining == {jti for name, jti in aged.items() if name not in deleted}

    assert "Deleted 0 token row(s)" in run("cleartokens")
    assert IssuedToken.objects.count() == len(remaining)
