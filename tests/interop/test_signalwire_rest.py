"""The real SignalWire Python SDK (signalwire-sdk, pinned) against Roomkey's live HTTP server.

`RestClient(project=…, token=…, host="localhost:PORT")` speaks plain HTTP to a loopback host
with Basic `project:token`; `client.chat.create_token(…)` posts JSON to /api/chat/tokens and
returns the body, or raises SignalWireRestError carrying our status and error body.
"""

import uuid
from types import SimpleNamespace
from urllib.parse import urlsplit

import jwt
import pytest
from signalwire.rest import RestClient
from signalwire.rest._base import SignalWireRestError

from tokens import services
from tokens.models import IssuedToken, SigningKey

ERROR_KEYS = {"type", "code", "message", "attribute", "url"}
RW = {"read": True, "write": True}


@pytest.fixture
def sdk_client():
    """sdk_client(project, token, host) -> RestClient. Each client's keep-alive connection is
    closed after the test, so no live-server thread outlives the test database it shares."""
    clients = []

    def make(project: str, token: str, host: str) -> RestClient:
        client = RestClient(project=project, token=token, host=host)
        clients.append(client)
        return client

    yield make
    for client in clients:
        # The SDK has no public close(); its HttpClient wraps one requests.Session.
        client._http._session.close()


@pytest.fixture
def sw(live_server, sdk_client):
    """The live server's loopback host, a project made for the test, and an SDK client."""
    project, key = services.project_create(name="Interop")
    url = urlsplit(live_server.url)
    host = f"{url.hostname}:{url.port}"
    client = sdk_client(str(project.pk), key.raw, host)
    return SimpleNamespace(project=project, key=key, host=host, client=client)


def check_token(sw, token: str, *, ttl: int) -> tuple[dict, IssuedToken]:
    """Header, signature (with the project's key, by PyJWT), claims, registry row, and
    Roomkey's own verification of a token the SDK got. Returns (claims, row)."""
    header = jwt.get_unverified_header(token)
    assert header == {
        "typ": "VRT",
        "alg": "HS512",
        "kid": header["kid"],
        "ch": f"ws://{sw.host}/api/relay/ws",
    }
    signing_key = SigningKey.objects.get(kid=header["kid"])
    assert signing_key.project_id == sw.project.pk
    claims = jwt.decode(token, bytes(signing_key.secret), algorithms=["HS512"])
    assert set(claims) == {"iss", "sub", "jti", "iat", "exp"}
    assert claims["iss"] == str(sw.project.pk)
    assert claims["exp"] - claims["iat"] == ttl * 60

    row = IssuedToken.objects.get(jti=claims["jti"])
    assert row.kind == "chat"
    assert row.project_id == sw.project.pk
    assert row.subject == claims["sub"]
    assert row.api_key_id == sw.key.row.pk
    assert row.client_ip == "127.0.0.1"

    result = services.token_verify(token, kind="chat")
    assert result.valid, result.reason
    assert result.row.jti == row.jti
    return claims, row


def sdk_error(client: RestClient, status: int, **kwargs):
    """`client.chat.create_token(**kwargs)`, which must raise SignalWireRestError with
    `status`; returns the error's body.

    The error is dropped with its traceback here: the traceback holds the SDK's HTTP response,
    and `pytest.raises` would keep it (and so the keep-alive connection, and the live-server
    thread serving it) alive until the garbage collector happened to break the cycle, perhaps
    after the live server had stopped sharing the test database.
    """
    try:
        client.chat.create_token(**kwargs)
    except SignalWireRestError as exc:
        assert exc.status_code == status, exc.body
        assert exc.method == "POST"
        assert urlsplit(exc.url).path == "/api/chat/tokens"
        return exc.body
    pytest.fail("the SDK did not raise")


def assert_one_error(body, attribute: str, code: str) -> dict:
    assert set(body) == {"errors"}
    assert len(body["errors"]) == 1, body
    error = body["errors"][0]
    assert set(error) == ERROR_KEYS
    assert error["attribute"] == attribute
    assert error["code"] == code
    assert error["type"] == "validation_error"
    assert error["message"]
    return error


# --- the three channel forms --------------------------------------------------------------

READ_ONLY = {"read": True, "write": False}
FORMS = [
    pytest.param(
        {"general": RW, "announcements": READ_ONLY},
        {"general": RW, "announcements": READ_ONLY},
        id="object",  # the REST reference (seed 000)
    ),
    pytest.param(
        [
            {"name": "general", "read": True, "write": True},
            {"name": "announcements", "read": True, "write": False},
        ],
        {"general": RW, "announcements": READ_ONLY},
        id="list-of-objects",  # the SDK docs
    ),
    pytest.param(
        ["general", "announcements"],
        {"general": RW, "announcements": RW},  # a bare name grants read and write
        id="list-of-names",  # the seed's JS example
    ),
]


@pytest.mark.parametrize(("channels", "grants"), FORMS)
def test_create_token_in_each_channels_form(sw, channels, grants):
    body = sw.client.chat.create_token(ttl=60, channels=channels)

    assert set(body) == {"token"}
    claims, row = check_token(sw, body["token"], ttl=60)
    assert uuid.UUID(claims["sub"]).version == 4  # no member_id: a random UUID
    assert row.grants == {"channels": grants, "state": {}}


# --- ttl ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", [1, 43200])
def test_ttl_bounds_accepted(sw, ttl):
    body = sw.client.chat.create_token(ttl=ttl, channels=["general"])
    check_token(sw, body["token"], ttl=ttl)


@pytest.mark.parametrize("ttl", [0, 43201])
def test_ttl_out_of_range_raises_422(sw, ttl):
    assert_one_error(
        sdk_error(sw.client, 422, ttl=ttl, channels=["general"]),
        "ttl",
        "out_of_range",
    )
    assert not IssuedToken.objects.exists()


# --- member_id and state ------------------------------------------------------------------


def test_member_id_and_state_round_trip(sw):
    member_id = "agent-\u00e9-" + "m" * 200
    state = {"display_name": "Zo\u00eb", "tags": ["vip", 3, None, True], "nested": {"a": 1.5}}

    body = sw.client.chat.create_token(
        ttl=30,
        channels=[{"name": "support", "read": True, "write": True}],
        member_id=member_id,
        state=state,
    )

    claims, row = check_token(sw, body["token"], ttl=30)
    assert claims["sub"] == member_id
    assert row.subject == member_id
    assert row.grants == {"channels": {"support": RW}, "state": state}


def test_every_limit_at_its_maximum(sw):
    # 500 channels of 250 characters (one sent decomposed: 251 code points, 250 after NFC),
    # a 250-character member id, and a state of exactly 2000 characters serialised, non-ASCII
    # characters counting as one each.
    names = [f"{i:03d}" + "n" * 247 for i in range(499)] + ["e\u0301" + "n" * 249]
    state = {"bio": "\u00e9" * (2000 - len('{"bio":""}'))}
    body = sw.client.chat.create_token(
        ttl=43200,
        channels=[{"name": name, "read": True, "write": True} for name in names],
        member_id="m" * 250,
        state=state,
    )

    token = body["token"]
    assert len(token.encode()) < 1024  # the grants stay on the row
    claims, row = check_token(sw, token, ttl=43200)
    assert claims["sub"] == "m" * 250
    assert len(row.grants["channels"]) == 500
    assert row.grants["channels"]["\u00e9" + "n" * 249] == RW
    assert row.grants["state"] == state


# --- errors the SDK raises on -------------------------------------------------------------


def test_wrong_key_raises_401(sw, sdk_client):
    client = sdk_client(str(sw.project.pk), "rk_000000000000_" + "A" * 43, sw.host)
    body = sdk_error(client, 401, ttl=5, channels=["general"])
    assert body == {"error": "Unauthorized"}
    assert not IssuedToken.objects.exists()


@pytest.mark.parametrize("wrong", ["other-project", "random-uuid", "not-a-uuid"])
def test_valid_key_with_wrong_project_raises_401(sw, sdk_client, wrong):
    if wrong == "other-project":
        other, _ = services.project_create(name="Other")
        project_id = str(other.pk)
    elif wrong == "random-uuid":
        project_id = str(uuid.uuid4())
    else:
        project_id = "not-a-uuid"
    client = sdk_client(project_id, sw.key.raw, sw.host)
    body = sdk_error(client, 401, ttl=5, channels=["general"])
    assert body == {"error": "Unauthorized"}
    assert not IssuedToken.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "attribute", "code"),
    [
        ({"ttl": 5, "channels": ["sw_internal"]}, "channels", "name_reserved"),
        ({"ttl": 5, "channels": ["a" * 251]}, "channels", "name_length"),
        ({"ttl": 5, "channels": [f"c{i}" for i in range(501)]}, "channels", "too_many"),
        (
            {"ttl": 5, "channels": {"c": {"read": False, "write": False}}},
            "channels",
            "no_permission",
        ),
        ({"ttl": "5", "channels": ["general"]}, "ttl", "invalid_parameter"),
        ({"ttl": 5, "channels": ["general"], "member_id": "m" * 251}, "member_id", "too_long"),
        ({"ttl": 5, "channels": ["general"], "state": {"k": "x" * 1993}}, "state", "too_long"),
    ],
)
def test_invalid_request_raises_422(sw, kwargs, attribute, code):
    error = assert_one_error(sdk_error(sw.client, 422, **kwargs), attribute, code)
    assert urlsplit(error["url"]).netloc == sw.host
    assert not IssuedToken.objects.exists()


def test_missing_ttl_raises_422(sw):
    # The SDK drops None-valued arguments, so ttl=None sends a body without ttl.
    assert_one_error(
        sdk_error(sw.client, 422, ttl=None, channels=["general"]),
        "ttl",
        "missing_required_parameter",
    )
    assert not IssuedToken.objects.exists()
