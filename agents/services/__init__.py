"""Writes of the agents app: keyword-only, atomic verbs called by the API, the admin, the
WebSocket consumer and the commands alike, one module per concern. Everything public is
re-exported here (`from agents import services; services.room_end(…)`), with the errors
they raise (agents.errors)."""

from ..errors import (
    BadMetadata,
    FieldsNotAllowed,
    LimitExceeded,
    LiveKitNotConfigured,
    RoomEnded,
    SessionEnded,
    SessionExists,
    SessionNotFound,
    Unprocessable,
)
from .call_sessions import (
    call_session_create,
    call_session_end,
    call_session_metadata_delete,
    call_session_metadata_update,
    call_session_revoke_tokens,
    call_sessions_cleanup,
)
from .livekit import IssuedLiveKit, livekit_token_issue, room_end
from .token_source import token_source_issue
from .tool_secrets import previous_valid_until, tool_secret_get_or_create, tool_secret_rotate
from .tool_tokens import (
    REASONS,
    IssuedToolToken,
    ToolCheck,
    tool_token_debug,
    tool_token_issue,
    tool_token_validate,
)
from .versions import (
    agent_set_active_version,
    agent_tokens_revoke,
    agent_version_create,
    agent_version_publish,
    assistant_tokens_revoke,
)
from .voice import (
    SessionToken,
    session_token_issue,
    voice_message_store,
    voice_session_channel,
    voice_session_connect,
    voice_session_end,
    voice_session_finish,
    voice_session_started_event,
)
from .web_calls import WebCall, web_call_issue

__all__ = [
    "REASONS",
    "BadMetadata",
    "FieldsNotAllowed",
    "IssuedLiveKit",
    "IssuedToolToken",
    "LimitExceeded",
    "LiveKitNotConfigured",
    "RoomEnded",
    "SessionEnded",
    "SessionExists",
    "SessionNotFound",
    "SessionToken",
    "ToolCheck",
    "Unprocessable",
    "WebCall",
    "agent_set_active_version",
    "agent_tokens_revoke",
    "agent_version_create",
    "agent_version_publish",
    "assistant_tokens_revoke",
    "call_session_create",
    "call_session_end",
    "call_session_metadata_delete",
    "call_session_metadata_update",
    "call_session_revoke_tokens",
    "call_sessions_cleanup",
    "livekit_token_issue",
    "previous_valid_until",
    "room_end",
    "session_token_issue",
    "token_source_issue",
    "tool_secret_get_or_create",
    "tool_secret_rotate",
    "tool_token_debug",
    "tool_token_issue",
    "tool_token_validate",
    "voice_message_store",
    "voice_session_channel",
    "voice_session_connect",
    "voice_session_end",
    "voice_session_finish",
    "voice_session_started_event",
    "web_call_issue",
]
