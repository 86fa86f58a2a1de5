"""Token kinds, as data.

`tokens` knows what kinds exist and how each is checked, not which app issues them. A kind
whose tokens are JWTs signed with the project's SigningKey needs only a `typ` and an `alg`;
a kind signed some other way (LiveKit, tool tokens) supplies a `decoder` when its app
registers it.
"""

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Decoded:
    """What a kind's decoder found in a token whose signature it checked."""

    kind: str
    jti: str
    project_id: str
    subject: str
    issued_at: int
    expires_at: int
    claims: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TokenKind:
    name: str
    label: str
    typ: str | None = None  # JWT "typ" header of project-signed kinds
    alg: str | None = None  # the one algorithm accepted for this kind
    # For kinds not signed with the project SigningKey: raw -> Decoded, raising
    # tokens.services.InvalidToken. `sniff` says cheaply whether a string may be one.
    decoder: Callable[[str], Decoded] | None = None
    sniff: Callable[[str], bool] | None = None
    # Optional, for debugging only (`manage.py debugtoken`): raw -> the fields a token of this
    # kind carries, read without checking anything. JWT kinds need none (their payload is read).
    peek: Callable[[str], dict] | None = None
    # Largest token of this kind accepted, when more than MAX_TOKEN_BYTES (a LiveKit token
    # carries prompts in its dispatch metadata). Only a token its `sniff` claims gets it.
    max_bytes: int | None = None


_registry: dict[str, TokenKind] = {}


def register(kind: TokenKind) -> TokenKind:
    _registry[kind.name] = kind
    return kind


def get(name: str) -> TokenKind:
    return _registry[name]


def all_kinds() -> list[TokenKind]:
    return list(_registry.values())


def max_bytes_for(raw: str) -> int | None:
    """The larger size limit a sniffing kind claims for `raw`, if any."""
    for kind in _registry.values():
        if kind.max_bytes is not None and kind.sniff is not None and kind.sniff(raw):
            return kind.max_bytes
    return None


def by_typ(typ) -> TokenKind | None:
    for kind in _registry.values():
        if kind.typ is not None and kind.typ == typ:
            return kind
    return None


def choices() -> list[tuple[str, str]]:
    return [(k.name, k.label) for k in _registry.values()]


# SignalWire chat tokens: the header typ "VRT" and HS512 are what SignalWire's own tokens use.
CHAT = register(TokenKind(name="chat", label="Chat", typ="VRT", alg="HS512"))
