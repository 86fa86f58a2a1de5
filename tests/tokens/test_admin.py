"""The admin inspects and revokes; it shows a new API key once and never a digest or a secret."""

import base64
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from tests.helpers import mint_chat
from tokens import crypto, services
from tokens.kinds import Decoded
from tokens.models import ApiKey, IssuedToken, Project, SigningKey

RAW_KEY = re.compile(r"rk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


def raw_keys_in(response) -> list[str]:
    return RAW_KEY.findall(response.content.decode())


def url(name, *args):
    return reverse(f"admin:tokens_{name}", args=[quote(a) for a in args])


chat_token = mint_chat


def tool_row(project, *, subject="call-1"):
    """A registry row of a kind not signed with the project key (recorded, not minted here)."""
    now = int(timezone.now().timestamp())
    return services.record_issued(
        project=project,
        decoded=Decoded(
            kind="tool",
            jti=crypto.new_jti(),
            project_id=str(project.pk),
            subject=subject,
            issued_at=now,
            expires_at=now + 600,
        ),
    )


class _ResultRows(HTMLParser):
    """The changelist's result table as {first column text: {field name: cell text}}."""

    def __init__(self):
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self._in_results = False
        self._field: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id") == "result_list":
            self._in_results = True
        elif self._in_results and tag == "tr":
            self.rows.append({})
        elif self._in_results and tag in ("td", "th") and self.rows:
            fields = [c[6:] for c in (attrs.get("class") or "").split() if c.startswith("field-")]
            self._field = fields[0] if fields else None
            if self._field:
                self.rows[-1][self._field] = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_results = False
        elif tag in ("td", "th"):
            self._field = None

    def handle_data(self, data):
        if self._in_results and self._field:
            self.rows[-1][self._field] += data.strip()


def result_rows(response, key="jti") -> dict[str, dict[str, str]]:
    parser = _ResultRows()
    parser.feed(response.content.decode())
    return {row[key]: row for row in parser.rows if key in row}


def listed(response) -> set[str]:
    return {str(obj.pk) for obj in response.context["cl"].result_list}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Passwords are not what these tests are about; the default hasher costs ~0.3 s a user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff_client(client, db):
    """make(*codenames) -> the test client logged in as a staff user with only those perms."""

    def make(*codenames):
        user = get_user_model().objects.create_user(
            username="viewer", password="unused-password", is_staff=True
        )
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="tokens", codename__in=codenames)
        )
        assert user.user_permissions.count() == len(codenames)
        client.force_login(user)
        return client

    return make


# --- Projects -------------------------------------------------------------------------------


def test_project_changelist_lists_projects(admin_client, project, other_project_and_key):
    response = admin_client.get(url("project_changelist"))
    assert response.status_code == 200
    assert listed(response) == {str(project.pk), str(other_project_and_key[0].pk)}
    assert {"Acme", "Other"} <= set(result_rows(response, "name"))


def test_adding_a_project_makes_keys_and_shows_the_raw_api_key_once(admin_client):
    response = admin_client.post(
        url("project_add"),
        {"name": "Initech", "api_keys-TOTAL_FORMS": "0", "api_keys-INITIAL_FORMS": "0"},
        follow=True,
    )
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == url("project_changelist")
    project = Project.objects.get(name="Initech")
    assert SigningKey.objects.filter(project=project, active=True).count() == 1
    assert ApiKey.objects.filter(project=project).count() == 1

    shown = raw_keys_in(response)
    assert len(shown) == 1
    raw = shown[0]
    authenticated = services.api_key_authenticate(raw=raw)
    assert authenticated is not None and authenticated.project_id == project.pk

    for later in (
        url("project_changelist"),
        url("project_change", project.pk),
        url("apikey_changelist"),
        url("apikey_change", authenticated.pk),
    ):
        page = admin_client.get(later)
        assert page.status_code == 200
        assert raw not in page.content.decode(), later
        assert raw_keys_in(page) == []


def test_project_change_page_lists_its_keys_by_prefix_only(admin_client, project):
    key = ApiKey.objects.get(project=project)
    response = admin_client.get(url("project_change", project.pk))
    assert response.status_code == 200
    content = response.content.decode()
    assert key.prefix in content
    assert key.digest not in content


# --- API keys -------------------------------------------------------------------------------


def test_adding_an_api_key_shows_the_raw_key_once(admin_client, project):
    before = set(ApiKey.objects.values_list("pk", flat=True))
    response = admin_client.post(
        url("apikey_add"),
        {"project": str(project.pk), "name": "ci", "expires_at_0": "", "expires_at_1": ""},
        follow=True,
    )
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == url("apikey_changelist")

    new = ApiKey.objects.exclude(pk__in=before)
    assert new.count() == 1  # the service made the row; the form did not save a second one
    row = new.get()
    assert row.name == "ci" and row.project_id == project.pk and row.expires_at is None

    shown = raw_keys_in(response)
    assert len(shown) == 1
    raw = shown[0]
    assert raw.startswith(f"rk_{row.prefix}_")
    assert services.api_key_authenticate(raw=raw, project_id=str(project.pk)) == row

    reloaded = admin_client.get(url("apikey_change", row.pk))
    assert reloaded.status_code == 200
    assert raw not in reloaded.content.decode()
    assert raw_keys_in(reloaded) == []


def test_adding_an_api_key_names_it_by_its_prefix_in_the_message_and_the_log(admin_client, project):
    response = admin_client.post(
        url("apikey_add"),
        {"project": str(project.pk), "name": "ci", "expires_at_0": "", "expires_at_1": ""},
        follow=True,
    )
    row = ApiKey.objects.get(name="ci")
    assert f"ci (rk_{row.prefix}_…)" in response.content.decode()
    entry = LogEntry.objects.get(object_id=str(row.pk), action_flag=ADDITION)
    assert entry.object_repr == str(row)


def test_adding_an_api_key_keeps_its_expiry(admin_client, project):
    response = admin_client.post(
        url("apikey_add"),
        {
            "project": str(project.pk),
            "name": "short",
            "expires_at_0": "2031-01-02",
            "expires_at_1": "03:04:05",
        },
        follow=True,
    )
    assert response.status_code == 200
    row = ApiKey.objects.get(name="short")
    assert row.expires_at == datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert services.api_key_authenticate(raw=raw_keys_in(response)[0]) == row


@pytest.mark.parametrize("page", ["apikey_change", "apikey_changelist", "apikey_history"])
def test_api_key_pages_never_show_the_digest(admin_client, project, page):
    key = ApiKey.objects.get(project=project)
    response = admin_client.get(url(page, key.pk) if page != "apikey_changelist" else url(page))
    assert response.status_code == 200
    content = response.content.decode()
    assert key.prefix in content
    assert key.digest not in content
    assert key.digest.upper() not in content
    assert 'name="digest"' not in content


def test_editing_an_api_key_keeps_its_secret(admin_client, project, api_key):
    key = ApiKey.objects.get(project=project)
    response = admin_client.post(
        url("apikey_change", key.pk),
        {"name": "renamed", "expires_at_0": "", "expires_at_1": ""},
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.name == "renamed"
    assert services.api_key_authenticate(raw=api_key) == key


def test_api_keys_are_revoked_not_deleted(admin_client, project, api_key):
    # A key's row is the audit trail of the tokens it issued (IssuedToken.api_key).
    key = ApiKey.objects.get(project=project)
    issued = mint_chat(project, member_id="alice", api_key=key)
    assert admin_client.post(url("apikey_delete", key.pk), {"post": "yes"}).status_code == 403
    admin_client.post(
        url("apikey_changelist"),
        {"action": "delete_selected", "index": "0", "post": "yes", "_selected_action": [key.pk]},
    )
    assert ApiKey.objects.filter(pk=key.pk).exists()
    assert IssuedToken.objects.get(pk=issued.row.jti).api_key == key


def test_revoke_keys_action_revokes_only_the_selected_keys(admin_client, project, api_key):
    doomed = [services.api_key_create(project=project, name=f"doomed {i}") for i in range(2)]
    response = admin_client.post(
        url("apikey_changelist"),
        {
            "action": "revoke_keys",
            "index": "0",
            "_selected_action": [str(new.row.pk) for new in doomed],
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "Revoked 2 API key(s)." in response.content.decode()
    for new in doomed:
        new.row.refresh_from_db()
        assert new.row.revoked_at is not None
        assert services.api_key_authenticate(raw=new.raw) is None
    assert services.api_key_authenticate(raw=api_key) is not None

    statuses = {r["__str__"]: r["status"] for r in result_rows(response, "__str__").values()}
    assert statuses[str(doomed[0].row)] == "revoked"
    assert statuses[str(ApiKey.objects.get(name="first key"))] == "usable"


# --- Signing keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "page", ["signingkey_changelist", "signingkey_change", "signingkey_history"]
)
def test_signing_key_pages_never_show_the_secret(admin_client, project, page):
    key = SigningKey.objects.get(project=project)
    secret = bytes(key.secret)
    assert len(secret) == crypto.SIGNING_SECRET_BYTES
    response = admin_client.get(url(page) if page == "signingkey_changelist" else url(page, key.pk))
    assert response.status_code == 200
    content = response.content.decode()
    assert key.kid in content
    for encoded in (
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode().rstrip("="),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
    ):
        assert encoded not in content
    assert 'name="secret"' not in content


def test_signing_keys_cannot_be_added_in_the_admin(admin_client, project):
    assert admin_client.get(url("signingkey_add")).status_code == 403


# --- Issued tokens --------------------------------------------------------------------------


@pytest.fixture
def tokens(project, other_project_and_key):
    """Tokens in every status and of two kinds, across two projects."""
    other = other_project_and_key[0]
    active = chat_token(project, member_id="alice")
    expired = chat_token(project, member_id="bob")
    IssuedToken.objects.filter(pk=expired.row.pk).update(
        expires_at=timezone.now() - timedelta(minutes=5)
    )
    revoked = chat_token(project, member_id="carol")
    assert services.token_revoke(jti=revoked.row.jti, by="test", reason="test")
    foreign = chat_token(other, member_id="alice-other")
    tool = tool_row(project, subject="call-42")
    return {
        "active": active.row.jti,
        "expired": expired.row.jti,
        "revoked": revoked.row.jti,
        "foreign": foreign.row.jti,
        "tool": tool.jti,
    }


def test_issued_token_changelist_columns(admin_client, tokens):
    response = admin_client.get(url("issuedtoken_changelist"))
    assert response.status_code == 200
    rows = result_rows(response)
    assert set(rows) == set(tokens.values())
    expected_status = {
        "active": "active",
        "expired": "expired",
        "revoked": "revoked",
        "foreign": "active",
        "tool": "active",
    }
    for name, jti in tokens.items():
        assert rows[jti]["status"] == expected_status[name], name
    assert rows[tokens["active"]]["kind"] == "chat"
    assert rows[tokens["active"]]["subject"] == "alice"
    assert rows[tokens["active"]]["project"] == "Acme"
    assert rows[tokens["foreign"]]["project"] == "Other"
    assert rows[tokens["tool"]]["kind"] == "tool"
    assert {"issued_at", "expires_at", "client_ip"} <= set(rows[tokens["active"]])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "active"}, {"active", "foreign", "tool"}),
        ({"status": "expired"}, {"expired"}),
        ({"status": "revoked"}, {"revoked"}),
        ({"kind": "tool"}, {"tool"}),
        ({"kind": "chat"}, {"active", "expired", "revoked", "foreign"}),
        ({"kind": "chat", "status": "active"}, {"active", "foreign"}),
        ({"project": "Other"}, {"foreign"}),
        ({"project": "Acme", "status": "active"}, {"active", "tool"}),
        ({"q": "carol"}, {"revoked"}),
        ({"q": "alice"}, {"active", "foreign"}),
        ({"q": "call-42"}, {"tool"}),
        ({"q": "jti:active"}, {"active"}),
        ({"q": "jti:foreign"}, {"foreign"}),
        ({"q": "nobody-has-this"}, set()),
    ],
)
def test_issued_token_filters_and_search(admin_client, tokens, query, expected):
    params = dict(query)
    if "project" in params:
        params["project__id__exact"] = str(Project.objects.get(name=params.pop("project")).pk)
    if params.get("q", "").startswith("jti:"):
        params["q"] = tokens[params["q"][4:]]
    response = admin_client.get(url("issuedtoken_changelist"), params)
    assert response.status_code == 200
    assert listed(response) == {tokens[name] for name in expected}
    assert set(result_rows(response)) == {tokens[name] for name in expected}


def test_issued_token_change_page_is_read_only_with_readable_grants(admin_client, project):
    issued = chat_token(
        project,
        channels={
            "lobby": {"read": True, "write": False},
            "support": {"read": True, "write": True},
            "<img src=x onerror=alert(1)>": {"read": False, "write": True},
        },
        state={"display_name": "Zoë"},
    )
    response = admin_client.get(url("issuedtoken_change", issued.row.jti))
    assert response.status_code == 200
    content = response.content.decode()
    assert issued.row.jti in content
    assert "member-1" in content
    assert "<th>channel</th><th>read</th><th>write</th>" in content
    assert "<tr><td>lobby</td><td>yes</td><td>no</td></tr>" in content
    assert "<tr><td>support</td><td>yes</td><td>yes</td></tr>" in content
    # Channel names are the token holder's input: escaped, never markup.
    assert "<img src=x" not in content
    assert "<td>&lt;img src=x onerror=alert(1)&gt;</td><td>no</td><td>yes</td>" in content
    assert "display_name" in content and "Zoë" in content
    # Read-only: no inputs for the row's fields, no save or delete buttons.
    for field in ("jti", "subject", "kind", "expires_at", "revoked_at", "grants"):
        assert f'name="{field}"' not in content
    assert 'name="_save"' not in content
    assert url("issuedtoken_delete", issued.row.jti) not in content
    # The raw token is never stored, so it cannot be shown.
    assert issued.token not in content


def test_issued_token_change_page_refuses_edits(admin_client, tokens):
    jti = tokens["active"]
    response = admin_client.post(
        url("issuedtoken_change", jti),
        {"subject": "mallory", "expires_at_0": "2099-01-01", "expires_at_1": "00:00:00"},
    )
    assert response.status_code == 403
    row = IssuedToken.objects.get(pk=jti)
    assert row.subject == "alice"
    assert row.expires_at < timezone.now() + timedelta(hours=2)


def test_issued_tokens_cannot_be_added_or_deleted(admin_client, tokens):
    jti = tokens["active"]
    assert admin_client.get(url("issuedtoken_add")).status_code == 403
    assert admin_client.get(url("issuedtoken_delete", jti)).status_code == 403
    assert admin_client.post(url("issuedtoken_delete", jti), {"post": "yes"}).status_code == 403
    response = admin_client.post(
        url("issuedtoken_changelist"),
        {"action": "delete_selected", "index": "0", "post": "yes", "_selected_action": [jti]},
    )
    assert response.status_code in (200, 302)
    assert IssuedToken.objects.filter(pk=jti).exists()

    changelist = admin_client.get(url("issuedtoken_changelist")).content.decode()
    assert url("issuedtoken_add") not in changelist
    assert "delete_selected" not in changelist


def test_revoke_selected_revokes_through_the_service(admin_client, admin_user, tokens):
    selected = [tokens["active"], tokens["foreign"], tokens["revoked"]]
    before_revoked = IssuedToken.objects.get(pk=tokens["revoked"])
    response = admin_client.post(
        url("issuedtoken_changelist"),
        {"action": "revoke_selected", "index": "0", "_selected_action": selected},
        follow=True,
    )
    assert response.status_code == 200
    # The one revoked already is not counted, and keeps its first revocation.
    assert "Revoked 2 token(s)." in response.content.decode()
    for jti in (tokens["active"], tokens["foreign"]):
        row = IssuedToken.objects.get(pk=jti)
        assert row.revoked_at is not None
        assert row.revoked_by == f"admin:{admin_user.get_username()}"
        assert row.revoke_reason
        assert row.status() == "revoked"
    again = IssuedToken.objects.get(pk=tokens["revoked"])
    assert (again.revoked_at, again.revoked_by) == (before_revoked.revoked_at, "test")
    for name in ("expired", "tool"):
        assert IssuedToken.objects.get(pk=tokens[name]).revoked_at is None


def test_revoked_token_stops_verifying(admin_client, project):
    issued = chat_token(project)
    assert services.token_verify(issued.token).valid
    admin_client.post(
        url("issuedtoken_changelist"),
        {"action": "revoke_selected", "index": "0", "_selected_action": [issued.row.jti]},
    )
    result = services.token_verify(issued.token)
    assert not result.valid and result.reason == "revoked"


@pytest.mark.parametrize(
    ("codenames", "may_revoke"),
    [
        (["view_issuedtoken"], False),
        (["view_issuedtoken", "revoke_issuedtoken"], True),
    ],
)
def test_revoke_action_needs_the_revoke_permission(staff_client, tokens, codenames, may_revoke):
    client = staff_client(*codenames)
    response = client.get(url("issuedtoken_changelist"))
    assert response.status_code == 200
    assert set(result_rows(response)) == set(tokens.values())
    assert ("revoke_selected" in response.content.decode()) is may_revoke

    jti = tokens["active"]
    client.post(
        url("issuedtoken_changelist"),
        {"action": "revoke_selected", "index": "0", "_selected_action": [jti]},
    )
    row = IssuedToken.objects.get(pk=jti)
    assert (row.revoked_at is not None) is may_revoke
    if may_revoke:
        assert row.revoked_by == "admin:viewer"


def test_view_only_staff_can_read_but_not_change_a_token(staff_client, tokens):
    client = staff_client("view_issuedtoken")
    jti = tokens["active"]
    page = client.get(url("issuedtoken_change", jti))
    assert page.status_code == 200
    assert "<tr><td>general</td><td>yes</td><td>yes</td></tr>" in page.content.decode()
    assert client.post(url("issuedtoken_change", jti), {"subject": "x"}).status_code == 403
    assert client.get(url("issuedtoken_changelist"), {"status": "revoked"}).status_code == 200
    # Nothing else in the tokens app is visible to this user.
    assert client.get(url("apikey_changelist")).status_code == 403
    assert client.get(url("signingkey_changelist")).status_code == 403
