"""services.token_verify: every input gets a Verification, never an exception.

Forged tokens are built by hand (base64url + HMAC from the standard library) or with
tokens.crypto.jwt_encode and the project's real signing secret, so that each test isolates
one defect in an otherwise valid token.
"""

import base64
import hashlib
import hmac
import json
import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from tokens import crypto, services
from tokens.models import IssuedToken, SigningKey
from tokens.services import Verification

MISSING = object()
TTL = timedelta(minutes=10)


def _b64(data) -> str:
    if not isinstance(data, bytes):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(part: str):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _hand_signed(header: dict, claims: dict, secret: bytes | None) -> str:
    """HMAC-SHA512 over header.payload, whatever the header says; no signature without a secret."""
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    if secret is None:
        return f"{signing_input}."
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha512).digest()
    return f"{signing_input}.{_b64(signature)}"


def _claims(project, **overrides) -> dict:
    now = int(time.time())
    claims = {
        "iss": str(project.pk),
        "sub": "alice",
        "jti": crypto.new_jti(),
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not MISSING}


def _sign(key: SigningKey, claims: dict, *, alg="HS512") -> str:
    """Signed with the real key through tokens.crypto, as token_issue signs."""
    headers = {"typ": "VRT", "kid": key.kid}
    return crypto.jwt_encode(claims, secret=bytes(key.secret), alg=alg, headers=headers)


def _issue(project, ttl=TTL, **kwargs) -> services.Issued:
    return services.token_issue(project=project, kind="chat", subject="alice", ttl=ttl, **kwargs)


def _verify(raw, **kwargs) -> Verification:
    result = services.token_verify(raw, kind="chat", **kwargs)
    assert isinstance(result, Verification)
    return result


def _tamper(raw: str, index: int) -> str:
    replacement = "A" if raw[index] != "A" else "B"
    return raw[:index] + replacement + raw[index + 1 :]


@pytest.fixture
def key(project) -> SigningKey:
    return SigningKey.objects.get(project=project)


@pytest.fixture
def other_key(other_project_and_key) -> SigningKey:
    return SigningKey.objects.get(project=other_project_and_key[0])


# --- The valid case, so that every refusal below is a refusal of one defect -----------------


def test_issued_token_verifies(project, key):
    issued = _issue(project)
    result = _verify(issued.token)
    assert result.valid is True
    assert result.reason == ""
    assert result.kind == "chat"
    assert result.row == issued.row
    assert result.decoded.jti == issued.row.jti
    assert result.decoded.project_id == str(project.pk)
    assert crypto.jwt_header(issued.token)["kid"] == key.kid


def test_hand_signed_token_with_a_registry_row_verifies(project, key):
    # Proves the forging helpers produce tokens the verifier accepts, so the refusals below
    # are caused by the defect each one introduces, not by the helpers.
    issued = _issue(project)
    claims = _claims(project, jti=issued.row.jti)
    assert _verify(_sign(key, claims)).valid is True
    header = {"alg": "HS512", "typ": "VRT", "kid": key.kid}
    assert _verify(_hand_signed(header, claims, bytes(key.secret))).valid is True


def test_ascii_bytes_are_accepted(project):
    assert _verify(_issue(project).token.encode()).valid is True


# --- Garbage --------------------------------------------------------------------------------

_rng = random.Random(7662)
GARBAGE = {
    "empty": "",
    "one-char": "a",
    "three-parts": "a.b.c",
    "dots": "...",
    "two-dots": "..",
    "no-dots": "eyJhbGciOiJIUzUxMiJ9",
    "four-parts": "a.b.c.d",
    "spaces": "   ",
    "non-ascii": "é.é.é",
    "emoji": "\U0001f511.\U0001f511.\U0001f511",
    "nul": "\x00.\x00.\x00",
    "lone-surrogate": "\ud800.a.b",
    "json-not-object-header": f"{_b64([1, 2])}.{_b64({})}.",
    "json-string-header": f"{_b64('x')}.{_b64({})}.",
    "header-not-json": f"{_b64(b'not json')}.{_b64({})}.",
    "header-bad-utf8": _b64(bytes([0xFF, 0xFE])) + "." + _b64({}) + ".",
    "random-bytes": _rng.randbytes(64),
    "random-bytes-as-text": _rng.randbytes(64).decode("latin-1"),
    "random-bytes-with-dots": b".".join(_rng.randbytes(20) for _ in range(3)),
    "non-ascii-bytes": "é.é.é".encode(),
    "empty-bytes": b"",
    "none": None,
    "int": 42,
    "bool": True,
    "float": 1.5,
    "list": ["a", "b", "c"],
    "dict": {"token": "a.b.c"},
    "bytearray": bytearray(b"a.b.c"),
    "memoryview": memoryview(b"a.b.c"),
}


@pytest.mark.parametrize("raw", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_is_malformed(db, raw):
    result = _verify(raw)
    assert result.valid is False
    assert result.reason == "malformed"


@pytest.mark.parametrize("raw", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_does_not_raise_without_a_kind(db, raw):
    result = services.token_verify(raw)
    assert result.valid is False
    assert result.reason in {"malformed", "wrong_kind", "bad_signature"}


# --- Size -----------------------------------------------------------------------------------


def _issue_of_length(project, length: int) -> services.Issued:
    """A real, registered token exactly `length` characters long, padded with a claim and a
    header field (base64url lengths skip every 4k+1, so one field alone cannot hit them all)."""
    for header_pad in range(4):
        pad = 0
        for _ in range(20):
            issued = _issue(project, claims={"pad": "p" * pad}, headers={"hp": "h" * header_pad})
            missing = length - len(issued.token)
            if missing == 0:
                return issued
            if missing < 0:
                break
            pad += max(1, missing * 3 // 4)
    raise AssertionError(f"could not build a token of {length} characters")


def test_oversize_is_refused_before_decoding(project, django_assert_num_queries):
    issued = _issue_of_length(project, 8193)
    services.signing_keys_forget()
    # A correctly signed, registered token: only its size is wrong, and it is refused without
    # even looking its key up.
    with django_assert_num_queries(0):
        result = _verify(issued.token)
    assert result == Verification(valid=False, reason="oversize")


def test_token_at_the_limit_is_not_oversize(project):
    issued = _issue_of_length(project, 8192)
    result = _verify(issued.token)
    assert result.reason != "oversize"
    assert result.valid is True


@pytest.mark.parametrize(
    "raw",
    [
        "eyJh" * 2048 + "A",
        "a" * 4000 + "." + "b" * 4000 + "." + "c" * 191,
        b"a" * 8193,
        "é" * 8193,
        "\x00" * 100_000,
    ],
    ids=["base64", "three-parts", "bytes", "non-ascii", "100k"],
)
def test_oversize_strings(db, raw, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert _verify(raw) == Verification(valid=False, reason="oversize")


def test_size_limit_is_read_from_settings(project, settings):
    issued = _issue(project)
    settings.ROOMKEY = {**settings.ROOMKEY, "MAX_TOKEN_BYTES": len(issued.token) - 1}
    assert _verify(issued.token).reason == "oversize"
    settings.ROOMKEY = {**settings.ROOMKEY, "MAX_TOKEN_BYTES": len(issued.token)}
    assert _verify(issued.token).valid is True


# --- Algorithm and key ----------------------------------------------------------------------


def _registered_claims(project) -> dict:
    """Claims of a registered, unrevoked token: only the forgery can make it invalid."""
    return _claims(project, jti=_issue(project).row.jti)


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none"},
        {"alg": "None"},
        {"alg": "NONE"},
        {"alg": ""},
        {"alg": None},
    ],
    ids=["none", "None", "NONE", "empty", "null"],
)
def test_unsigned_token_is_refused(project, key, header):
    claims = _registered_claims(project)
    raw = _hand_signed({**header, "typ": "VRT", "kid": key.kid}, claims, None)
    assert raw.endswith(".")
    result = _verify(raw)
    assert result.valid is False
    assert result.reason == "bad_signature"


def test_hs256_with_the_real_secret_is_refused(project, key):
    claims = _registered_claims(project)
    raw = _sign(key, claims, alg="HS256")
    assert crypto.jwt_header(raw)["alg"] == "HS256"
    assert _verify(raw).reason == "bad_signature"


@pytest.mark.parametrize(
    "alg",
    ["RS256", "RS512", "ES512", "PS512", "EdDSA", "hs512", "HS512 ", "HS384", ["HS512"], 512],
    ids=str,
)
def test_lying_alg_header_over_a_real_hs512_signature_is_refused(project, key, alg):
    # The signature is a correct HMAC-SHA512 with the real secret: only the header lies, as in
    # the RS256/HS256 key-confusion attack.
    claims = _registered_claims(project)
    raw = _hand_signed({"alg": alg, "typ": "VRT", "kid": key.kid}, claims, bytes(key.secret))
    result = _verify(raw)
    assert result.valid is False
    assert result.reason == "bad_signature"


@pytest.mark.parametrize(
    "kid",
    ["no-such-kid", "", MISSING, None, 7, ["kid"], {"kid": "x"}, "k" * 65, "\x00", "\ud800"],
    ids=["unknown", "empty", "absent", "null", "int", "list", "dict", "long", "nul", "surrogate"],
)
def test_bad_kid_is_refused(project, key, kid):
    claims = _registered_claims(project)
    header = {"alg": "HS512", "typ": "VRT"}
    if kid is not MISSING:
        header["kid"] = kid
    result = _verify(_hand_signed(header, claims, bytes(key.secret)))
    assert result.valid is False
    assert result.reason in {"bad_signature", "malformed"}
    # Whatever the kid did to the database session, it is still usable.
    assert _verify(_issue(project).token).valid is True


def test_kid_of_another_projects_key_is_refused(project, key, other_key):
    # Signed with the other project's real key, claiming to be from this project.
    claims = _registered_claims(project)
    assert _verify(_sign(other_key, claims)).reason == "bad_signature"


def test_kid_of_one_key_with_the_secret_of_another_is_refused(project, key, other_key):
    claims = _registered_claims(project)
    header = {"alg": "HS512", "typ": "VRT", "kid": key.kid}
    assert _verify(_hand_signed(header, claims, bytes(other_key.secret))).reason == "bad_signature"


# --- Claims ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": MISSING}, "malformed"),
        ({"iat": MISSING}, "malformed"),
        ({"jti": MISSING}, "malformed"),
        ({"sub": MISSING}, "malformed"),
        ({"iss": MISSING}, "bad_signature"),
        ({"exp": "9999999999"}, "malformed"),
        ({"exp": True}, "malformed"),
        ({"exp": 9999999999.5}, "malformed"),
        ({"exp": None}, "malformed"),
        ({"iat": "0"}, "malformed"),
        ({"iat": False}, "malformed"),
        ({"jti": ""}, "malformed"),
        ({"jti": 12345}, "malformed"),
        ({"jti": "j" * 65}, "malformed"),
        ({"sub": ""}, "malformed"),
        ({"sub": ["alice"]}, "malformed"),
        ({"sub": "s" * 257}, "malformed"),
        ({"iss": "not-a-project"}, "bad_signature"),
    ],
    ids=lambda v: repr(v) if not isinstance(v, dict) else ",".join(f"{k}={v[k]!r:.20}" for k in v),
)
def test_bad_claims_signed_with_the_real_key(project, key, overrides, reason):
    claims = _claims(project, **overrides)
    result = _verify(_sign(key, claims))
    assert result.valid is False
    assert result.reason == reason


@pytest.mark.parametrize(
    "iss",
    [lambda pid: None, lambda pid: 1, lambda pid: [pid], lambda pid: {"id": pid}],
    ids=["null", "int", "list", "object"],
)
def test_non_string_iss_is_refused(project, key, iss):
    # PyJWT will not encode these, so they are signed by hand with the real secret.
    claims = {**_registered_claims(project), "iss": iss(str(project.pk))}
    header = {"alg": "HS512", "typ": "VRT", "kid": key.kid}
    assert _verify(_hand_signed(header, claims, bytes(key.secret))).reason == "bad_signature"


def test_iss_of_another_project_is_refused(project, key, other_project_and_key):
    other = other_project_and_key[0]
    issued = _issue(other)  # a registered jti of the other project
    claims = _claims(other, jti=issued.row.jti)
    assert _verify(_sign(key, claims)).reason == "bad_signature"


@pytest.mark.parametrize("typ", ["JWT", "XYZ", "vrt", "", MISSING, 1], ids=repr)
def test_token_of_another_kind_is_refused(project, key, typ):
    claims = _registered_claims(project)
    header = {"alg": "HS512", "kid": key.kid}
    if typ is not MISSING:
        header["typ"] = typ
    raw = _hand_signed(header, claims, bytes(key.secret))
    result = _verify(raw)
    assert result.valid is False
    assert result.reason == "wrong_kind"
    # Without an expected kind the typ must name one.
    assert services.token_verify(raw).reason == "wrong_kind"


# --- Tampering ------------------------------------------------------------------------------


def test_tampered_signature_is_refused(project):
    raw = _issue(project).token
    signature_start = raw.rindex(".") + 1
    for index in (signature_start, signature_start + 20, len(raw) - 2):
        assert _verify(_tamper(raw, index)).reason == "bad_signature"


def test_truncated_or_stripped_signature_is_refused(project):
    raw = _issue(project).token
    head, _, signature = raw.rpartition(".")
    assert _verify(f"{head}.{signature[:-4]}").valid is False
    assert _verify(f"{head}.").reason == "bad_signature"


def test_tampered_payload_is_refused(project):
    raw = _issue(project).token
    header, payload, signature = raw.split(".")
    claims = _unb64(payload)
    for change in ({"sub": "mallory"}, {"exp": claims["exp"] + 3600}, {"iat": claims["iat"] - 1}):
        assert _verify(f"{header}.{_b64({**claims, **change})}.{signature}").reason == (
            "bad_signature"
        )


def test_tampered_header_is_refused(project):
    raw = _issue(project).token
    header, payload, signature = raw.split(".")
    forged = {**_unb64(header), "ch": "wss://evil.example/ws"}
    assert _verify(f"{_b64(forged)}.{payload}.{signature}").reason == "bad_signature"


# --- Expiry, registry, revocation -----------------------------------------------------------


def test_expired(project):
    issued = _issue(project)
    later = timezone.now() + TTL + timedelta(seconds=1)
    result = _verify(issued.token, now=later)
    assert result.valid is False
    assert result.reason == "expired"


def test_expiry_boundary(project):
    issued = _issue(project)
    exp = int(issued.row.expires_at.timestamp())
    assert _verify(issued.token, now=datetime.fromtimestamp(exp - 1, tz=UTC)).valid is True
    assert _verify(issued.token, now=datetime.fromtimestamp(exp, tz=UTC)).reason == "expired"


def test_token_issued_already_expired(project):
    assert _verify(_issue(project, ttl=timedelta(seconds=-1)).token).reason == "expired"


def test_revoked(project):
    issued = _issue(project)
    assert services.token_revoke(jti=issued.row.jti) is True
    result = _verify(issued.token)
    assert result.valid is False
    assert result.reason == "revoked"
    assert result.row.pk == issued.row.jti


def test_unknown_jti(project, key):
    raw = _sign(key, _claims(project))
    result = _verify(raw)
    assert result.valid is False
    assert result.reason == "unknown"


def test_registry_row_of_another_kind_is_unknown(project, key):
    issued = _issue(project)
    IssuedToken.objects.filter(pk=issued.row.pk).update(kind="voice")
    assert _verify(issued.token).reason == "unknown"


def test_purged_row_is_unknown(project):
    issued = _issue(project)
    IssuedToken.objects.filter(pk=issued.row.pk).delete()
    assert _verify(issued.token).reason == "unknown"


# --- Signing keys ---------------------------------------------------------------------------


def test_retired_key_verifies_nothing(project, key, django_capture_on_commit_callbacks):
    issued = _issue(project)
    assert _verify(issued.token).valid is True  # the key is now cached in this process
    with django_capture_on_commit_callbacks(execute=True):
        services.signing_key_retire(key=key)
    assert _verify(issued.token).reason == "bad_signature"


def test_rotated_key_keeps_verifying(project, key, django_capture_on_commit_callbacks):
    old = _issue(project)
    assert _verify(old.token).valid is True
    with django_capture_on_commit_callbacks(execute=True):
        new_key = services.signing_key_rotate(project=project)
    assert new_key.kid != key.kid
    new = _issue(project)
    assert crypto.jwt_header(old.token)["kid"] == key.kid
    assert crypto.jwt_header(new.token)["kid"] == new_key.kid
    assert new.row.signing_kid == new_key.kid
    assert _verify(old.token).valid is True
    assert _verify(new.token).valid is True
    # Retiring the old key ends the old tokens only.
    with django_capture_on_commit_callbacks(execute=True):
        services.signing_key_retire(key=key)
    assert _verify(old.token).reason == "bad_signature"
    assert _verify(new.token).valid is True


# --- Order of checks ------------------------------------------------------------------------


def test_expired_with_bad_signature_reports_bad_signature(project):
    raw = _issue(project).token
    forged = _tamper(raw, raw.rindex(".") + 5)
    later = timezone.now() + TTL * 2
    assert _verify(forged, now=later).reason == "bad_signature"


def test_expired_and_revoked_reports_expired(project):
    issued = _issue(project)
    services.token_revoke(jti=issued.row.jti)
    later = timezone.now() + TTL * 2
    assert _verify(issued.token, now=later).reason == "expired"


def test_wrong_kind_with_bad_signature_reports_bad_signature(project, key):
    claims = _registered_claims(project)
    raw = _hand_signed({"alg": "HS512", "typ": "JWT", "kid": key.kid}, claims, b"x" * 64)
    assert _verify(raw).reason == "bad_signature"


def test_expired_unknown_reports_expired(project, key):
    raw = _sign(key, _claims(project, exp=int(time.time()) - 1))
    assert _verify(raw).reason == "expired"


# --- Fuzz -----------------------------------------------------------------------------------

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ é\x00"


def _mutate(rng: random.Random, raw: str) -> str:
    for _ in range(rng.randint(1, 3)):
        index = rng.randrange(len(raw))
        op = rng.random()
        if op < 0.7:
            raw = raw[:index] + rng.choice(ALPHABET) + raw[index + 1 :]
        elif op < 0.85:
            raw = raw[:index] + raw[index + 1 :]
        else:
            raw = raw[:index] + rng.choice(ALPHABET) + raw[index:]
    return raw


def test_random_mutations_never_raise(project):
    issued = _issue(project)
    original = _verify(issued.token)
    assert original.valid is True
    rng = random.Random(20240601)
    invalid = 0
    seen = set()
    while len(seen) < 300:
        mutated = _mutate(rng, issued.token)
        if mutated == issued.token or mutated in seen:
            continue
        seen.add(mutated)
        result = services.token_verify(mutated, kind="chat")
        assert isinstance(result, Verification), mutated
        if result.valid:
            # Only a change the base64 decoder ignores (the spare bits of the signature's
            # last character) may leave a token valid, and then it is the same token.
            assert result.decoded == original.decoded, mutated
        else:
            assert result.reason in {"malformed", "bad_signature", "wrong_kind"}, (
                mutated,
                result.reason,
            )
            invalid += 1
        assert services.token_verify(mutated).valid == result.valid
    assert invalid >= 280


# --- Introspection --------------------------------------------------------------------------


def test_introspect_by_another_project_is_inactive(project, other_project_and_key):
    issued = _issue(project)
    other = other_project_and_key[0]
    assert services.token_introspect(issued.token, project=project)["active"] is True
    assert services.token_introspect(issued.token, project=other) == {"active": False}


@pytest.mark.parametrize("raw", ["", "a.b.c", None, 42, b"\xff"], ids=repr)
def test_introspect_garbage_is_inactive(project, raw):
    assert services.token_introspect(raw, project=project) == {"active": False}


def test_key_material_stays_out_of_error_reports(rf):
    """Roomkey's own frames that hold a secret are cleansed in Django's error page and mail."""
    import sys

    from django.views.debug import ExceptionReporter

    secret = b"s" * 64
    try:
        crypto.jwt_encode({"a": 1}, secret=secret, alg="NOPE", headers={})
    except Exception:
        data = ExceptionReporter(rf.get("/"), *sys.exc_info()).get_traceback_data()
    frame = next(f for f in data["frames"] if f["function"] == "jwt_encode")
    shown = dict(frame["vars"])
    assert "secret" in shown and "sssssssss" not in shown["secret"]
