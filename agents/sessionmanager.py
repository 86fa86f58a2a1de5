"""Seed 001's SessionManager, as a Roomkey service for one project.

The operations, names and argument orders of signalwire-sdk's `SessionManager`, so agent code
written against it can switch by changing the constructor, and its tokens are the SDK's (the
SDK validates Roomkey's with `SessionManager(secret_key=<the project's tool secret>)`, and
Roomkey validates the SDK's). Unlike the SDK, sessions exist: tokens validate only for a
session made by `create_session` and not ended; metadata is kept; tokens can be limited
(`max_uses`) and revoked, and `check_token` says why one is invalid.

    from agents.sessionmanager import SessionManager
    sm = SessionManager(project=project)
    call_id = sm.create_session()
    token = sm.create_tool_token("get_weather", call_id)
    sm.validate_tool_token("get_weather", token, call_id)  # True
"""

from typing import Any

from tokens.models import Project

from . import selectors, services
from .errors import SessionEnded, SessionExists, SessionNotFound


class SessionManager:
    def __init__(self, *, project: Project, token_expiry_secs: int | None = None):
        self.project = project
        self.token_expiry_secs = token_expiry_secs  # None: ROOMKEY_AGENTS["TOOL_TOKEN_TTL"]

    def _session(self, call_id):
        session = None
        if isinstance(call_id, str):
            session = selectors.call_session_get(project=self.project, call_id=call_id)
        if session is None:
            raise SessionNotFound(f"No session {call_id!r}.")
        return session

    def create_session(self, call_id: str | None = None) -> str:
        """The given call id (its session made if new), or a new random one. Raises
        SessionEnded for the id of an ended session, BadInput for an unusable id."""
        if call_id:
            existing = selectors.call_session_get(project=self.project, call_id=call_id)
            if existing is not None:
                if existing.ended_at is not None:
                    raise SessionEnded()
                return call_id
        try:
            return services.call_session_create(project=self.project, call_id=call_id).call_id
        except SessionExists:  # made concurrently
            return call_id

    def generate_token(
        self, function_name: str, call_id: str, *, max_uses: int | None = None
    ) -> str:
        """Raises SessionNotFound, SessionEnded, BadInput (bad function name)."""
        return services.tool_token_issue(
            session=self._session(call_id),
            function=function_name,
            ttl=self.token_expiry_secs,
            max_uses=max_uses,
        ).token

    def create_tool_token(self, function_name: str, call_id: str, **kwargs) -> str:
        return self.generate_token(function_name, call_id, **kwargs)

    def check_token(self, call_id: str, function_name: str, token: str) -> services.ToolCheck:
        """validate_token with the reason (services.REASONS) when invalid."""
        return services.tool_token_validate(
            project=self.project, call_id=call_id, function=function_name, token=token
        )

    def validate_token(self, call_id: str, function_name: str, token: str) -> bool:
        return self.check_token(call_id, function_name, token).valid

    def validate_tool_token(self, function_name: str, token: str, call_id: str) -> bool:
        return self.validate_token(call_id, function_name, token)

    def debug_token(self, token: str) -> dict[str, Any]:
        return services.tool_token_debug(project=self.project, token=token)

    def get_session_metadata(self, call_id: str) -> dict[str, Any] | None:
        """The metadata, or None for an unknown session."""
        try:
            return dict(self._session(call_id).metadata)
        except SessionNotFound:
            return None

    def set_session_metadata(self, call_id: str, key: str, value: Any) -> bool:
        """False for an unknown or ended session. Raises BadMetadata past the limits."""
        try:
            services.call_session_metadata_update(
                session=self._session(call_id), values={key: value}
            )
        except (SessionNotFound, SessionEnded):
            return False
        return True

    def delete_session_metadata(self, call_id: str, key: str | None = None) -> bool:
        """Remove one key, or all of them when `key` is None. False if there was nothing to
        remove or the session is unknown or ended."""
        try:
            return services.call_session_metadata_delete(session=self._session(call_id), key=key)
        except (SessionNotFound, SessionEnded):
            return False

    def activate_session(self, call_id: str) -> bool:
        """The SDK's legacy call (a no-op there that returns True): True while the session
        exists and is open."""
        try:
            session = self._session(call_id)
        except SessionNotFound:
            return False
        return session.status() == "open"

    def end_session(self, call_id: str) -> bool:
        try:
            return services.call_session_end(session=self._session(call_id), by="SessionManager")
        except SessionNotFound:
            return False

    def cleanup(self) -> int:
        """End this project's expired sessions and purge old ended ones; returns how many
        sessions it ended or purged."""
        return sum(services.call_sessions_cleanup(project=self.project))
