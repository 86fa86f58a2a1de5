"""LiveKit access tokens: the claims LiveKit expects, LiveKit's limits checked before a token
is minted (a token LiveKit would refuse is never issued), and the `livekit` token kind that
introspection and revocation decode. Issuing is agents.services.livekit's; the credentials a
project signs with are agents.selectors.livekit_credentials'.

Claim names follow LiveKit's protocol as livekit-api (pinned in the dev dependencies, whose
TokenVerifier checks every token the tests mint) reads them: `sub` identity, `iss` API key,
`nbf`/`exp`, `name`, `metadata`, `attributes` (string map), `video` grant in camelCase, and
`roomConfig.agents[].{agentName, metadata}` for agent dispatch. Tokens are signed with
tokens.crypto (HS256), not livekit-api's AccessToken: that would pull aiohttp and protobuf into
the runtime for one JSON object, and could not carry the `jti` every Roomkey token has.

The kind: a LiveKit token's `iss` is the LiveKit API key, which several projects may share
(the settings default), so the token's jti finds its registry row, the row its project, and
the project the secret that must have signed it.
"""

from tokens import crypto, kinds
from tokens.inputs import compact_json
from tokens.kinds import Decoded, TokenKind
from tokens.models import IssuedToken
from tokens.services import InvalidToken

from .errors import LimitExceeded
from .selectors import livekit_credentials

# LiveKit server limits (INTEROP.md).
NAME_MAX_CHARS = 256  # identity, participant name, room name
METADATA_MAX_BYTES = 512 * 1024  # participant metadata; each dispatch's metadata
ATTRIBUTES_MAX_BYTES = 64 * 1024  # sum of UTF-8 keys and values
TOKEN_MAX_BYTES = 1024 * 1024  # the largest token Roomkey will mint or introspect
ALGORITHM = "HS256"


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def attributes_size(attributes: dict[str, str]) -> int:
    return sum(utf8_len(k) + utf8_len(v) for k, v in attributes.items())


def check_limits(
    *,
    identity: str,
    room: str,
    name: str = "",
    metadata: str = "",
    attributes: dict[str, str] | None = None,
    dispatches: list[dict] | None = None,
    fields: dict[str, str] | None = None,
) -> None:
    """Raise LimitExceeded naming the first value over a LiveKit limit. `fields` maps the
    internal names to the names the caller used (e.g. identity -> participant_identity)."""
    fields = fields or {}

    def fail(field, message):
        raise LimitExceeded(message, field=fields.get(field, field))

    for field, value in (("identity", identity), ("room", room), ("name", name)):
        if len(value) > NAME_MAX_CHARS:
            fail(field, f"must be at most {NAME_MAX_CHARS} characters (LiveKit's limit).")
    if utf8_len(metadata) > METADATA_MAX_BYTES:
        fail("metadata", "must be at most 512 KiB (LiveKit's limit).")
    if attributes and attributes_size(attributes) > ATTRIBUTES_MAX_BYTES:
        fail("attributes", "must be at most 64 KiB in total, keys and values (LiveKit's limit).")
    for dispatch in dispatches or []:
        if len(dispatch.get("agentName", "")) > NAME_MAX_CHARS:
            fail("room_config", f"agent names must be at most {NAME_MAX_CHARS} characters.")
        if utf8_len(dispatch.get("metadata", "")) > METADATA_MAX_BYTES:
            fail("dispatch", "the agent's dispatch metadata must be at most 512 KiB.")


# A voice call's participant publishes its microphone and nothing else (seed 003: "microphone
# subscribe and publish"); typed chat goes over data, which canPublishData allows.
VOICE_SOURCES = ["microphone"]


def join_grant(room: str, sources: list[str] | None = None) -> dict:
    """Join one room; publish, subscribe and send data there (publishing only `sources` when
    given). No room admin, create, list or record, no agent or hidden participant, no
    metadata self-update: a client token only."""
    grant = {
        "room": room,
        "roomJoin": True,
        "canPublish": True,
        "canSubscribe": True,
        "canPublishData": True,
    }
    if sources is not None:
        grant["canPublishSources"] = list(sources)
    return grant


def access_token_claims(
    *,
    api_key: str,
    identity: str,
    room: str,
    jti: str,
    iat: int,
    exp: int,
    name: str = "",
    metadata: str = "",
    attributes: dict[str, str] | None = None,
    dispatches: list[dict] | None = None,
    sources: list[str] | None = None,
) -> dict:
    claims = {
        "iss": api_key,
        "sub": identity,
        "jti": jti,
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "video": join_grant(room, sources),
    }
    if name:
        claims["name"] = name
    if metadata:
        claims["metadata"] = metadata
    if attributes:
        claims["attributes"] = attributes
    if dispatches:
        claims["roomConfig"] = {"agents": dispatches}
    return claims


def dispatch(agent_name: str, metadata: dict | str) -> dict:
    """One `roomConfig.agents` entry: LiveKit starts agent `agent_name` when the room is
    created, handing it `metadata` (a string; Roomkey's is compact JSON)."""
    text = metadata if isinstance(metadata, str) else compact_json(metadata)
    return {"agentName": agent_name, "metadata": text}


# --- The registered kind --------------------------------------------------------------------

KIND = "livekit"


def sniff_livekit(raw: str) -> bool:
    """A plain `typ: JWT` HS256 header: what LiveKit tokens have and no project-signed kind
    (each has its own typ) does."""
    try:
        header = crypto.jwt_header(raw)
    except crypto.MalformedToken:
        return False
    return header.get("typ") == "JWT" and header.get("alg") == ALGORITHM


def decode_livekit(raw: str) -> Decoded:
    try:
        header = crypto.jwt_header(raw)
        unverified = crypto.jwt_unverified_claims(raw)
    except crypto.MalformedToken:
        raise InvalidToken("malformed") from None
    if header.get("alg") != ALGORITHM:
        raise InvalidToken("bad_signature")
    jti = unverified.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 64:
        raise InvalidToken("malformed")
    row = IssuedToken.objects.select_related("project").filter(pk=jti, kind=KIND).first()
    if row is None:
        # Which secret would have signed it is unknown, so neither is the signature.
        raise InvalidToken("unknown")
    credentials = livekit_credentials(project=row.project)
    if not credentials.api_secret:
        raise InvalidToken("bad_signature")
    try:
        claims = crypto.jwt_decode(raw, secret=credentials.api_secret.encode(), alg=ALGORITHM)
    except crypto.BadSignature:
        raise InvalidToken("bad_signature") from None
    except crypto.MalformedToken:
        raise InvalidToken("malformed") from None
    if claims.get("iss") != credentials.api_key or claims.get("jti") != jti:
        raise InvalidToken("bad_signature")
    # The registry row is the truth. Whoever holds the LiveKit secret (the LiveKit server; in
    # development everyone) can sign a registered jti anew with a later expiry, an earlier
    # not-before or more grants; such a token is not the one Roomkey issued.
    issued_at, expires_at = int(row.issued_at.timestamp()), int(row.expires_at.timestamp())
    signed = {
        "sub": claims.get("sub"),
        "exp": claims.get("exp"),
        "nbf": claims.get("nbf"),
        "video": claims.get("video"),
    }
    issued = {
        "sub": row.subject,
        "exp": expires_at,
        "nbf": issued_at,
        "video": (row.grants or {}).get("video"),
    }
    if signed != issued:
        raise InvalidToken("unknown")
    return Decoded(
        kind=KIND,
        jti=jti,
        project_id=str(row.project_id),
        subject=row.subject,
        issued_at=issued_at,
        expires_at=expires_at,
        claims=claims,
    )


LIVEKIT = kinds.register(
    TokenKind(
        name=KIND,
        label="LiveKit",
        decoder=decode_livekit,
        sniff=sniff_livekit,
        max_bytes=TOKEN_MAX_BYTES,
    )
)
