"""POST /api/chat/tokens (seed 000) through DRF's test client.

Every limit is tried at N (accepted) and N+1 (refused); every refusal must come back as
422 `{"errors": [{type, code, message, attribute, url}]}` naming the offending attribute (or
401 `{"error": "Unauthorized"}`), and must leave no IssuedToken row behind.
"""

import json
import unicodedata
import uuid

import jwt
import pytest

from tokens import services
from tokens.models import ApiKey, IssuedToken, SigningKey

URL = "/api/chat/tokens"
ERROR_KEYS = {"type", "code", "message", "attribute", "url"}
MIB = 1024 * 1024
FORMS = ["object", "objects", "names"]
RW = {"read": True, "write": True}


# --- helpers ------------------------------------------------------------------------------


def channels_in(form: str, names) -> dict | list:
    """The same read+write grants in each of the three request forms."""
    if form == "object":
        return {name: dict(RW) for name in names}
    if form == "objects":
        return [{"name": name, **RW} for name in names]
    return list(names)


def serialised_length(state: dict) -> int:
    # Written out here rather than imported: the test pins what the limit counts.
    return len(json.dumps(state, separators=(",", ":"), ensure_ascii=False))


def state_of_length(n: int, char: str = "x") -> dict:
    state = {"k": char * (n - len('{"k":""}'))}
    assert serialised_length(state) == n
    return state


def nested(objects: int, inner=None) -> dict:
    """`objects` nested objects `{"a": {"a": …}}`; the innermost one is empty, or holds
    `inner` under "a"."""
    value = {} if inner is None else {"a": inner}
    for _ in range(objects - 1):
        value = {"a": value}
    return value


def lists(n: int) -> list:
    """`n` nested empty lists."""
    value = []
    for _ in range(n - 1):
        value = [value]
    return value


def post(client, body, **extra):
    return client.post(URL, body, format="json", **extra)


def post_raw(client, raw, content_type="application/json", **extra):
    return client.post(URL, raw, content_type=content_type, **extra)


def issued(response):
    """(token, header, claims, row) of a 200 answer."""
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"token"}
    token = body["token"]
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    row = IssuedToken.objects.get(jti=claims["jti"])
    return token, header, claims, row


def refused(response, attribute, code=None):
    """Assert a 422 in SignalWire's shape with exactly one error naming `attribute`, and
    that nothing was issued. Returns the error."""
    assert response.status_code == 422, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"errors"}
    assert len(body["errors"]) == 1, body
    error = body["errors"][0]
    assert set(error) == ERROR_KEYS
    assert error["type"] in {"validation_error", "invalid_request_error"}
    assert isinstance(error["message"], str) and error["message"]
    assert error["url"] == "http://testserver/#errors"
    assert error["attribute"] == attribute, error
    if code is not None:
        assert error["code"] == code, error
    assert not IssuedToken.objects.exists()
    return error


def unauthorized(response):
    assert response.status_code == 401, response.content
    assert response.json() == {"error": "Unauthorized"}
    assert response["WWW-Authenticate"]
    assert not IssuedToken.objects.exists()


GOOD = {"ttl": 5, "channels": ["general"]}


# --- the token ----------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_token_header_claims_and_registry_row(api, project, form):
    names = ["general", "e\u0301clair"]  # the second is stored NFC-composed
    response = post(api, {"ttl": 15, "channels": channels_in(form, names)})
    token, header, claims, row = issued(response)

    assert header == {
        "typ": "VRT",
        "alg": "HS512",
        "kid": header["kid"],
        "ch": "ws://testserver/api/relay/ws",
    }
    secret = bytes(SigningKey.objects.get(kid=header["kid"], project=project).secret)
    verified = jwt.decode(token, secret, algorithms=["HS512"])
    assert verified == claims
    assert set(claims) == {"iss", "sub", "jti", "iat", "exp"}
    assert claims["iss"] == str(project.pk)
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert uuid.UUID(claims["sub"]).version == 4  # member_id absent: a random UUID

    assert row.kind == "chat"
    assert row.project_id == project.pk
    assert row.subject == claims["sub"]
    assert row.grants == {"channels": {"general": RW, "\u00e9clair": RW}, "state": {}}
    assert row.api_key == ApiKey.objects.get(project=project)
    assert row.client_ip == "127.0.0.1"
    assert row.signing_kid == header["kid"]
    assert (row.expires_at - row.issued_at).total_seconds() == 15 * 60

    result = services.token_verify(token, kind="chat")
    assert result.valid, result.reason
    assert result.row.jti == row.jti


def test_basic_auth_with_the_project_id_is_accepted(client_for, project, api_key):
    client = client_for(api_key, project_id=project.pk)
    _, _, claims, row = issued(post(client, GOOD))
    assert claims["iss"] == str(project.pk)
    assert row.api_key.project_id == project.pk


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ({"read": True}, {"read": True, "write": False}),
        ({"write": True}, {"read": False, "write": True}),
        ({"read": True, "write": False}, {"read": True, "write": False}),
        ({"read": False, "write": True}, {"read": False, "write": True}),
    ],
)
@pytest.mark.parametrize("form", ["object", "objects"])
def test_partial_permissions_are_kept_as_given(api, form, given, stored):
    channels = {"c": given} if form == "object" else [{"name": "c", **given}]
    _, _, _, row = issued(post(api, {"ttl": 5, "channels": channels}))
    assert row.grants["channels"] == {"c": stored}


def test_mixed_list_of_names_and_objects(api):
    channels = ["a", {"name": "b", "read": True, "write": False}]
    _, _, _, row = issued(post(api, {"ttl": 5, "channels": channels}))
    assert row.grants["channels"] == {"a": RW, "b": {"read": True, "write": False}}


def test_max_size_token_is_under_one_kilobyte(api):
    names = [f"{i:03d}" + "n" * 247 for i in range(500)]
    assert all(len(name) == 250 for name in names)
    body = {
        "ttl": 43200,
        "channels": channels_in("object", names),
        "member_id": "m" * 250,
        "state": state_of_length(2000),
    }
    token, _, claims, row = issued(post(api, body))
    assert len(token.encode()) < 1024
    assert claims["sub"] == "m" * 250
    assert len(row.grants["channels"]) == 500
    assert services.token_verify(token, kind="chat").valid


def test_relay_url_is_wss_on_a_secure_request(api):
    _, header, _, _ = issued(post(api, GOOD, secure=True))
    assert header["ch"] == "wss://testserver/api/relay/ws"


def test_relay_url_follows_the_host(api, settings):
    settings.ALLOWED_HOSTS = ["chat.example.com"]
    _, header, _, _ = issued(post(api, GOOD, HTTP_HOST="chat.example.com:8443"))
    assert header["ch"] == "ws://chat.example.com:8443/api/relay/ws"


@pytest.mark.parametrize("secure", [False, True])
def test_relay_url_setting_wins(api, settings, secure):
    relay = "wss://relay.example.com/custom/ws"
    settings.ROOMKEY_CHAT = {**settings.ROOMKEY_CHAT, "RELAY_URL": relay}
    _, header, _, _ = issued(post(api, GOOD, secure=secure))
    assert header["ch"] == relay


# --- ttl ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", [1, 43200])
def test_ttl_bounds_accepted(api, ttl):
    _, _, claims, _ = issued(post(api, {"ttl": ttl, "channels": ["a"]}))
    assert claims["exp"] - claims["iat"] == ttl * 60


@pytest.mark.parametrize("ttl", [0, 43201, -1, 10**30])
def test_ttl_out_of_range(api, ttl):
    refused(post(api, {"ttl": ttl, "channels": ["a"]}), "ttl", "out_of_range")


@pytest.mark.parametrize("ttl", ["5", 5.5, 5.0, True, False, [5], {"v": 5}, None])
def test_ttl_wrong_type(api, ttl):
    refused(post(api, {"ttl": ttl, "channels": ["a"]}), "ttl", "invalid_parameter")


@pytest.mark.parametrize(
    ("body", "attribute"),
    [({"channels": ["a"]}, "ttl"), ({"ttl": 5}, "channels")],
)
def test_missing_required_parameter(api, body, attribute):
    refused(post(api, body), attribute, "missing_required_parameter")


@pytest.mark.parametrize("raw", ["{}", ""])
def test_both_missing_names_both(api, raw):
    response = post_raw(api, raw)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [(e["attribute"], e["code"]) for e in errors] == [
        ("ttl", "missing_required_parameter"),
        ("channels", "missing_required_parameter"),
    ]
    assert all(set(e) == ERROR_KEYS for e in errors)
    assert not IssuedToken.objects.exists()


# --- channels: count ----------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_500_channels_accepted(api, form):
    names = [f"channel-{i}" for i in range(500)]
    _, _, _, row = issued(post(api, {"ttl": 5, "channels": channels_in(form, names)}))
    assert row.grants["channels"] == {name: RW for name in names}


@pytest.mark.parametrize("form", FORMS)
def test_501_channels_refused(api, form):
    names = [f"channel-{i}" for i in range(501)]
    refused(post(api, {"ttl": 5, "channels": channels_in(form, names)}), "channels", "too_many")


@pytest.mark.parametrize("channels", [{}, []])
def test_no_channels_refused(api, channels):
    refused(post(api, {"ttl": 5, "channels": channels}), "channels", "empty")


@pytest.mark.parametrize(
    ("channels", "code"),
    [
        ("general", "invalid_parameter"),
        (5, "invalid_parameter"),
        (True, "invalid_parameter"),
        (None, "invalid_parameter"),
        ([5], "invalid_parameter"),
        ([None], "invalid_parameter"),
        ([["general"]], "invalid_parameter"),
        ([{"read": True}], "name_type"),
        ([{"name": 5, "read": True}], "name_type"),
        ([{"name": None, "read": True}], "name_type"),
    ],
)
def test_channels_wrong_shape(api, channels, code):
    refused(post(api, {"ttl": 5, "channels": channels}), "channels", code)


# --- channels: names ----------------------------------------------------------------------

NAME_OK = [
    pytest.param("a" * 250, "a" * 250, id="250-ascii"),
    pytest.param("\u00e9" * 250, "\u00e9" * 250, id="250-precomposed"),
    # 251 code points as sent, 250 after NFC.
    pytest.param("e\u0301" + "a" * 249, "\u00e9" + "a" * 249, id="251-before-nfc"),
    pytest.param("e\u0301" * 250, "\u00e9" * 250, id="500-before-nfc"),
    # U+0958 is a composition exclusion: NFC turns each into two code points.
    pytest.param("\u0958" * 125, "\u0915\u093c" * 125, id="250-after-nfc-expansion"),
    pytest.param("\U0001f600" * 250, "\U0001f600" * 250, id="250-astral"),
    pytest.param("x", "x", id="1"),
    pytest.param("sw", "sw", id="sw-no-underscore"),
    pytest.param("sw-general", "sw-general", id="sw-dash"),
    pytest.param("my_sw_room", "my_sw_room", id="sw_-inside"),
]


@pytest.mark.parametrize(("name", "stored"), NAME_OK)
@pytest.mark.parametrize("form", FORMS)
def test_channel_name_accepted(api, form, name, stored):
    assert len(unicodedata.normalize("NFC", name)) == len(stored) <= 250
    _, _, _, row = issued(post(api, {"ttl": 5, "channels": channels_in(form, [name])}))
    assert row.grants["channels"] == {stored: RW}


NAME_REFUSED = [
    pytest.param("a" * 251, "name_length", id="251-ascii"),
    pytest.param("\u00e9" * 251, "name_length", id="251-precomposed"),
    pytest.param("e\u0301" * 251, "name_length", id="251-after-nfc"),
    pytest.param("\u0958" * 126, "name_length", id="252-after-nfc-expansion"),
    pytest.param("", "name_length", id="empty"),
    pytest.param("sw_", "name_reserved", id="sw_"),
    pytest.param("sw_general", "name_reserved", id="sw_general"),
    pytest.param("gen\neral", "name_characters", id="newline"),
    pytest.param("gen\x00eral", "name_characters", id="nul"),
    pytest.param("gen\x7feral", "name_characters", id="del"),
    pytest.param("\tgeneral", "name_characters", id="tab"),
    pytest.param("gen\u202eeral", "name_characters", id="rlo"),
    pytest.param("gen\u2066eral", "name_characters", id="lri"),
    pytest.param("gen\u202aeral", "name_characters", id="lre"),
    pytest.param("gen\u2069eral", "name_characters", id="pdi"),
    pytest.param("gen\ud800eral", "name_characters", id="lone-surrogate"),
]


@pytest.mark.parametrize(("name", "code"), NAME_REFUSED)
@pytest.mark.parametrize("form", FORMS)
def test_channel_name_refused(api, form, name, code):
    # json.dumps escapes non-ASCII, so a lone surrogate can be sent too.
    raw = json.dumps({"ttl": 5, "channels": channels_in(form, [name])})
    refused(post_raw(api, raw), "channels", code)


@pytest.mark.parametrize(
    "channels",
    [
        pytest.param(["general", "general"], id="names"),
        pytest.param(["\u00e9", "e\u0301"], id="names-nfc"),
        pytest.param(
            [{"name": "\u00e9", **RW}, {"name": "e\u0301", "read": True}], id="objects-nfc"
        ),
        pytest.param({"\u00e9": RW, "e\u0301": RW}, id="object-nfc"),
        pytest.param(["general", {"name": "general", **RW}], id="mixed"),
    ],
)
def test_duplicate_channels_refused(api, channels):
    refused(post(api, {"ttl": 5, "channels": channels}), "channels", "duplicate")


# --- channels: permissions ----------------------------------------------------------------

PERMISSIONS_REFUSED = [
    pytest.param({"read": 1, "write": True}, "permissions", id="read-int"),
    pytest.param({"read": "true"}, "permissions", id="read-string"),
    pytest.param({"read": True, "write": None}, "permissions", id="write-null"),
    pytest.param({"read": True, "admin": True}, "permissions", id="unknown-key"),
    pytest.param({"read": False, "write": False}, "no_permission", id="both-false"),
    pytest.param({}, "no_permission", id="nothing"),
]


@pytest.mark.parametrize(("perms", "code"), PERMISSIONS_REFUSED)
@pytest.mark.parametrize("form", ["object", "objects"])
def test_bad_permissions_refused(api, form, perms, code):
    channels = {"c": perms} if form == "object" else [{"name": "c", **perms}]
    refused(post(api, {"ttl": 5, "channels": channels}), "channels", code)


@pytest.mark.parametrize("perms", [True, None, ["read"], "rw", 1])
def test_permissions_not_an_object_refused(api, perms):
    refused(post(api, {"ttl": 5, "channels": {"c": perms}}), "channels", "permissions")


# --- member_id ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "member_id",
    ["m" * 250, "\u00e9" * 250, "\U0001f600" * 250, "user-42", str(uuid.uuid4())],
)
def test_member_id_accepted(api, member_id):
    token, _, claims, row = issued(post(api, {**GOOD, "member_id": member_id}))
    assert claims["sub"] == member_id
    assert row.subject == member_id
    assert services.token_verify(token, kind="chat").valid


@pytest.mark.parametrize(
    ("member_id", "code"),
    [
        ("m" * 251, "too_long"),
        ("\u00e9" * 251, "too_long"),
        (5, "invalid_parameter"),
        (None, "invalid_parameter"),
        (["m"], "invalid_parameter"),
        ("m\nx", "characters"),
        ("m\x00x", "characters"),
        ("m\u202ex", "characters"),
    ],
)
def test_member_id_refused(api, member_id, code):
    refused(post(api, {**GOOD, "member_id": member_id}), "member_id", code)


# --- state --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(state_of_length(2000), id="2000-ascii"),
        # Non-ASCII characters count as one each (as \u escapes they would be 6).
        pytest.param(state_of_length(2000, "\u00e9"), id="2000-latin"),
        pytest.param(state_of_length(2000, "\u4e2d"), id="2000-cjk"),
        pytest.param({}, id="empty"),
        pytest.param({"a": [1, 2.5, True, None, "x"], "b": {"c": "d"}}, id="mixed"),
    ],
)
def test_state_accepted(api, state):
    _, _, _, row = issued(post(api, {**GOOD, "state": state}))
    assert row.grants["state"] == state


def test_state_length_ignores_the_client_whitespace(api):
    # Sent pretty-printed (well over 2000 characters of JSON text), it is 2000 compact.
    state = {f"k{i}": "v" * 10 for i in range(100)}
    state["k100"] = "v" * (2000 - serialised_length(state) - len(',"k100":""'))
    assert serialised_length(state) == 2000
    raw = json.dumps({**GOOD, "state": state}, indent=8)
    assert len(raw) > 3000
    _, _, _, row = issued(post_raw(api, raw))
    assert row.grants["state"] == state


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(state_of_length(2001), id="2001-ascii"),
        pytest.param(state_of_length(2001, "\u00e9"), id="2001-latin"),
        pytest.param(state_of_length(2001, "\U0001f600"), id="2001-astral"),
    ],
)
def test_state_too_long(api, state):
    refused(post(api, {**GOOD, "state": state}), "state", "too_long")


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(nested(32), id="32-objects"),
        pytest.param(nested(31, []), id="31-objects-1-list"),
        pytest.param(nested(16, lists(16)), id="16-objects-16-lists"),
    ],
)
def test_state_depth_32_accepted(api, state):
    _, _, _, row = issued(post(api, {**GOOD, "state": state}))
    assert row.grants["state"] == state


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(nested(33), id="33-objects"),
        pytest.param(nested(32, []), id="32-objects-1-list"),
        pytest.param(nested(16, lists(17)), id="16-objects-17-lists"),
        pytest.param(nested(500), id="500-objects"),
    ],
)
def test_state_depth_33_refused(api, state):
    refused(post(api, {**GOOD, "state": state}), "state", "too_deep")


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(nested(32, 1), id="32-objects-number"),
        pytest.param(nested(32, "x"), id="32-objects-string"),
        pytest.param(nested(31, [None]), id="31-objects-1-list-null"),
    ],
)
def test_state_depth_32_holding_a_value(api, state):
    # Regression: scalars used to count as a level, so 32 nested objects were refused as
    # soon as the innermost one held a value.
    _, _, _, row = issued(post(api, {**GOOD, "state": state}))
    assert row.grants["state"] == state


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ([], "invalid_parameter"),
        ("{}", "invalid_parameter"),
        (5, "invalid_parameter"),
        (None, "invalid_parameter"),
        ({"a": "x\x00y"}, "characters"),
        ({"x\x00y": 1}, "characters"),
    ],
)
def test_state_refused(api, state, code):
    refused(post(api, {**GOOD, "state": state}), "state", code)


@pytest.mark.parametrize("raw_state", ['{"a": "\\ud800"}', '{"\\udfff": 1}', '{"a": ["\\ud800"]}'])
def test_state_lone_surrogate_refused(api, raw_state):
    raw = '{"ttl": 5, "channels": ["a"], "state": ' + raw_state + "}"
    refused(post_raw(api, raw), "state", "characters")


@pytest.mark.parametrize("number", ["1e400", "-1e400", "[1e999]"])
def test_non_finite_number_refused(api, number):
    # Regression: 1e400 parsed to inf and was written as Infinity, which neither SQLite's
    # JSON_VALID check nor PostgreSQL's jsonb accepts (500). It is now refused by the parser.
    raw = '{"ttl": 5, "channels": ["a"], "state": {"n": ' + number + "}}"
    refused(post_raw(api, raw), None, "parse_error")


# --- bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param('{"ttl": 5,', id="truncated"),
        pytest.param("{'ttl': 5}", id="single-quotes"),
        pytest.param('{"ttl": 5, "channels": ["a"]} x', id="trailing-garbage"),
        pytest.param('{"ttl": NaN, "channels": ["a"]}', id="nan"),
        pytest.param('{"ttl": Infinity, "channels": ["a"]}', id="infinity"),
        pytest.param('{"ttl": ' + "9" * 5000 + ', "channels": ["a"]}', id="huge-int"),
        pytest.param(b'{"ttl": 5, "channels": ["\xff"]}', id="not-utf8"),
        pytest.param("[" * 100_000, id="100000-open-brackets"),
        pytest.param("[" * 100_000 + "]" * 100_000, id="100000-nested-lists"),
        pytest.param('{"a":' * 100_000 + "1" + "}" * 100_000, id="100000-nested-objects"),
        pytest.param(
            '{"ttl": 5, "channels": ["a"], "state": {"a": ' + "[" * 100_000 + "]" * 100_000 + "}}",
            id="100000-nested-in-state",
        ),
    ],
)
def test_unparseable_json(api, raw):
    refused(post_raw(api, raw), None, "parse_error")


@pytest.mark.parametrize("raw", ["[]", '[{"ttl": 5, "channels": ["a"]}]', '"x"', "5", "null"])
def test_body_not_an_object(api, raw):
    refused(post_raw(api, raw), None, "invalid_parameter")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml"],
)
def test_wrong_content_type(api, content_type):
    response = post_raw(api, json.dumps(GOOD), content_type=content_type)
    refused(response, None, "unsupported_media_type")


def test_multipart_refused(api):
    response = api.post(URL, {"ttl": "5", "channels": "a"}, format="multipart")
    refused(response, None, "unsupported_media_type")


@pytest.mark.parametrize("charset", ["punycode", "utf-32", "no-such-codec-but-valid"])
def test_unusable_charset_refused(api, charset):
    # Regression: the punycode codec raises UnicodeError (not UnicodeDecodeError): was a 500.
    content_type = f"application/json; charset={charset}"
    response = post_raw(api, json.dumps(GOOD), content_type=content_type)
    if charset.startswith("no-such"):
        issued(response)  # Django ignores an unknown charset: the body is read as UTF-8
    else:
        refused(response, None, "parse_error")


def padded(size: int) -> str:
    raw = json.dumps(GOOD)
    return raw + " " * (size - len(raw))


def test_body_of_exactly_one_mebibyte_accepted(api):
    raw = padded(MIB)
    assert len(raw.encode()) == MIB
    issued(post_raw(api, raw))


@pytest.mark.parametrize("size", [MIB + 1, 2 * MIB])
def test_body_over_one_mebibyte_refused(api, size):
    refused(post_raw(api, padded(size)), None, "body_too_large")


def test_body_over_djangos_own_default_limit_refused(api):
    # Regression: DRF reads request.body before a JSONParser subclass runs, so past Django's
    # default DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) RequestDataTooBig escaped as an HTML 400.
    api.raise_request_exception = False
    refused(post_raw(api, padded(3 * MIB)), None, "body_too_large")


@pytest.mark.parametrize(("size", "status"), [(100, 200), (101, 422)])
def test_body_limit_is_read_from_settings(api, settings, size, status):
    settings.ROOMKEY = {**settings.ROOMKEY, "MAX_BODY_BYTES": 100}
    response = post_raw(api, padded(size))
    if status == 200:
        issued(response)
    else:
        refused(response, None, "body_too_large")


# --- authentication -----------------------------------------------------------------------


def test_no_credentials(client_for, db):
    unauthorized(post(client_for(), GOOD))


def test_no_credentials_is_checked_before_the_body(client_for, db):
    unauthorized(post_raw(client_for(), "[" * 100_000))


@pytest.mark.parametrize(
    "key",
    [
        "rk_000000000000_" + "A" * 43,  # well formed, unknown
        "nope",
        "",
    ],
)
def test_bearer_wrong_key(client_for, project, key):
    client = client_for()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    unauthorized(post(client, GOOD))


def test_bearer_tampered_key(client_for, api_key):
    tampered = api_key[:-1] + ("A" if api_key[-1] != "A" else "B")
    unauthorized(post(client_for(tampered), GOOD))


def test_basic_with_another_projects_id(client_for, api_key, other_project_and_key):
    other, _ = other_project_and_key
    unauthorized(post(client_for(api_key, project_id=other.pk), GOOD))


@pytest.mark.parametrize("project_id", [uuid.uuid4(), "not-a-project", ""])
def test_basic_with_a_wrong_project_id(client_for, api_key, project_id):
    unauthorized(post(client_for(api_key, project_id=project_id), GOOD))


def test_basic_with_another_projects_key(client_for, project, other_project_and_key):
    _, other_key = other_project_and_key
    unauthorized(post(client_for(other_key, project_id=project.pk), GOOD))


def test_basic_with_a_wrong_key(client_for, project):
    unauthorized(post(client_for("rk_000000000000_" + "A" * 43, project_id=project.pk), GOOD))


@pytest.mark.parametrize(
    "authorization",
    ["Basic", "Basic !!!", "Basic " + "bm9jb2xvbg==", "Bearer", "Token abc", "Bearer a b"],
)
def test_malformed_authorization(client_for, db, authorization):
    client = client_for()
    client.credentials(HTTP_AUTHORIZATION=authorization)
    unauthorized(post(client, GOOD))


def test_revoked_key(client_for, project, api_key):
    services.api_key_revoke(api_key=ApiKey.objects.get(project=project))
    unauthorized(post(client_for(api_key), GOOD))
    unauthorized(post(client_for(api_key, project_id=project.pk), GOOD))
