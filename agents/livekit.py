"""LiveKit access tokens: the claims LiveKit expects, and LiveKit's limits checked before a
token is minted (a token LiveKit would refuse is never issued).

Claim names follow LiveKit's protocol as livekit-api (pinned in the dev dependencies, whose
TokenVerifier checks every token the tests mint) reads them: `sub` identity, `iss` API key,
`nbf`/`exp`, `name`, `metadata`, `attributes` (string map), `video` grant in camelCase, and
`roomConfig.agents[].{agentName, metadata}` for agent dispatch. Tokens are signed with
tokens.crypto (HS256), not livekit-api's AccessToken: that would pull aiohttp and protobuf into
the runtime for one JSON object, and could not carry the `jti` every Roomkey token has.
"""

import json

# LiveKit server limits (INTEROP.md).
NAME_MAX_CHARS = 256  # identity, participant name, room name
METADATA_MAX_BYTES = 512 * 1024  # participant metadata; each dispatch's metadata
ATTRIBUTES_MAX_BYTES = 64 * 1024  # sum of UTF-8 keys and values
TOKEN_MAX_BYTES = 1024 * 1024  # the largest token Roomkey will mint or introspect
ALGORITHM = "HS256"


class LimitExceeded(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def attributes_size(attributes: dict[str, str]) -> int:
    return sum(utf8_len(k) + utf8_len(v) for k, v in attributes.items())


def compact_json(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


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
        raise LimitExceeded(fields.get(field, field), message)

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
