"""The token kinds agents issue, registered with tokens.kinds when the app is ready.

- `voice`: a voice-session token, a JWT signed with the project's SigningKey like chat tokens,
  told apart by its own header `typ` and `aud`.
- `livekit`: a LiveKit access token, signed with the project's LiveKit API secret. Its `iss`
  is the LiveKit API key, which several projects may share (the settings default), so the
  token's jti finds its registry row, the row its project, and the project the secret that
  must have signed it.
"""

from tokens import crypto, kinds
from tokens.kinds import Decoded, TokenKind
from tokens.models import IssuedToken

from . import livekit

VOICE_AUDIENCE = "roomkey:voice-session"

VOICE = kinds.register(
    TokenKind(name="voice", label="Voice session", typ="voice-session+jwt", alg="HS256")
)


def _invalid(reason: str):
    from tokens.services import InvalidToken  # tokens.services imports tokens.kinds

    return InvalidToken(reason)


def sniff_livekit(raw: str) -> bool:
    """A plain `typ: JWT` HS256 header: what LiveKit tokens have and no project-signed kind
    (each has its own typ) does."""
    try:
        header = crypto.jwt_header(raw)
    except crypto.MalformedToken:
        return False
    return header.get("typ") == "JWT" and header.get("alg") == livekit.ALGORITHM


def decode_livekit(raw: str) -> Decoded:
    from .selectors import livekit_credentials

    try:
        header = crypto.jwt_header(raw)
        unverified = crypto.jwt_unverified_claims(raw)
    except crypto.MalformedToken:
        raise _invalid("malformed") from None
    if header.get("alg") != livekit.ALGORITHM:
        raise _invalid("bad_signature")
    jti = unverified.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 64:
        raise _invalid("malformed")
    row = IssuedToken.objects.select_related("project").filter(pk=jti, kind=LIVEKIT_NAME).first()
    if row is None:
        # Which secret would have signed it is unknown, so neither is the signature.
        raise _invalid("unknown")
    credentials = livekit_credentials(project=row.project)
    if not credentials.api_secret:
        raise _invalid("bad_signature")
    try:
        claims = crypto.jwt_decode(
            raw, secret=credentials.api_secret.encode(), alg=livekit.ALGORITHM
        )
    except crypto.BadSignature:
        raise _invalid("bad_signature") from None
    except crypto.MalformedToken:
        raise _invalid("malformed") from None
    if claims.get("iss") != credentials.api_key or claims.get("jti") != jti:
        raise _invalid("bad_signature")
    subject, exp = claims.get("sub"), claims.get("exp")
    issued = claims.get("iat", claims.get("nbf"))
    if not isinstance(subject, str) or not subject:
        raise _invalid("malformed")
    for value in (exp, issued):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid("malformed")
    return Decoded(
        kind=LIVEKIT_NAME,
        jti=jti,
        project_id=str(row.project_id),
        subject=subject,
        issued_at=issued,
        expires_at=exp,
        claims=claims,
    )


LIVEKIT_NAME = "livekit"
LIVEKIT = kinds.register(
    TokenKind(
        name=LIVEKIT_NAME,
        label="LiveKit",
        decoder=decode_livekit,
        sniff=sniff_livekit,
        max_bytes=livekit.TOKEN_MAX_BYTES,
    )
)
