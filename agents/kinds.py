"""The `voice` token kind: a voice-session token, a JWT signed with the project's SigningKey
like chat tokens, told apart by its own header `typ` and its `aud`. Registered with
tokens.kinds when the app is ready (the `livekit` and `tool` kinds register in
agents.livekit and agents.tooltokens)."""

from tokens import kinds
from tokens.kinds import TokenKind

VOICE_AUDIENCE = "roomkey:voice-session"

VOICE = kinds.register(
    TokenKind(name="voice", label="Voice session", typ="voice-session+jwt", alg="HS256")
)
