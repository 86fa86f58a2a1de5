"""Authorisation by chat token (seed 000's tokens, used on the relay and the Fabric paths).

The token names the member (`sub`) and the project (`iss`); its channels and initial state
are on the IssuedToken row. A channel in the token is an address name: `read` allows history,
subscribe, join and the member list; `write` allows publish, send and member state.
"""

import logging
from dataclasses import dataclass, field

from tokens import kinds
from tokens.models import Project
from tokens.services import token_verify

from .errors import ChatAuthError, InvalidChannelName
from .names import clean_channel_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChatGrant:
    """What one verified chat token allows."""

    jti: str
    project: Project
    member_id: str
    channels: dict = field(default_factory=dict)  # {name: {"read": bool, "write": bool}}
    state: dict = field(default_factory=dict)
    issued_at: int = 0
    expires_at: int = 0

    def _perms(self, name) -> dict:
        try:
            name = clean_channel_name(name)
        except InvalidChannelName:
            return {}
        return self.channels.get(name) or {}

    def can_read(self, name) -> bool:
        return bool(self._perms(name).get("read"))

    def can_write(self, name) -> bool:
        return bool(self._perms(name).get("write"))

    def readable(self) -> list[str]:
        return [name for name, perms in self.channels.items() if perms.get("read")]


def chat_grant(raw) -> ChatGrant:
    """The grant of a valid, unexpired, unrevoked chat token, else ChatAuthError.

    Any other kind of token (voice session, LiveKit, tool) is refused as wrong_kind. When the
    database cannot be asked, its error is raised instead (tokens.errors.DATABASE_UNAVAILABLE):
    that says nothing of the token, and is answered 503 or closes a socket with 1013.
    """
    result = token_verify(raw, kind=kinds.CHAT.name)
    if not result.valid:
        log.info("chat token refused: %s", result.reason)
        raise ChatAuthError(result.reason)
    row, decoded = result.row, result.decoded
    grants = row.grants or {}
    return ChatGrant(
        jti=row.jti,
        project=row.project,
        member_id=row.subject,
        channels=dict(grants.get("channels") or {}),
        state=dict(grants.get("state") or {}),
        issued_at=decoded.issued_at,
        expires_at=decoded.expires_at,
    )
