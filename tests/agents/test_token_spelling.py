"""One token, one spelling: a JWS Roomkey signs (chat, voice-session and LiveKit tokens) is valid
only in its canonical compact form — unpadded base64url, each segment the canonical encoding of
its bytes. Padding (`==`) or unused trailing bits set make a different string that decoders
accept for the same bytes; such strings are not tokens."""

import pytest

from tests.helpers import mint_chat

INTROSPECT = "/api/v1/tokens/introspect"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _other_spellings(token: str) -> dict[str, str]:
    header, payload, signature = token.split(".")
    # The signature's last character carries unused low bits (HS512: 64 bytes in 86
    # characters, HS256: 32 in 43): flipping the lowest one decodes to the same bytes.
    last = ALPHABET[ALPHABET.index(signature[-1]) ^ 1]
    return {
        "padded": token + "==",
        "padded signature": f"{header}.{payload}.{signature}=",
        "padded payload": f"{header}.{payload}=.{signature}",
        "trailing bits": f"{header}.{payload}.{signature[:-1]}{last}",
        "standard alphabet": token.replace("-", "+").replace("_", "/"),
    }


def _tokens(api, agent, version) -> dict[str, str]:
    voice = api.post("/v1/session-token", {"agent_id": str(agent.pk)}, format="json")
    webrtc = api.post(
        "/v1/session-token", {"agent_id": str(agent.pk), "transport": "webrtc"}, format="json"
    )
    assert voice.status_code == webrtc.status_code == 200
    return {
        "chat": mint_chat(agent.project).token,
        "voice": voice.json()["token"],
        "livekit": webrtc.json()["token"],
    }


@pytest.mark.parametrize("kind", ["chat", "voice", "livekit"])
def test_only_the_canonical_spelling_introspects_active(api, agent, version, kind):
    token = _tokens(api, agent, version)[kind]
    assert api.post(INTROSPECT, {"token": token}, format="json").json()["active"] is True
    for name, spelling in _other_spellings(token).items():
        if spelling == token:
            continue  # no '-' or '_' to swap in this token
        answer = api.post(INTROSPECT, {"token": spelling}, format="json")
        assert answer.json() == {"active": False}, name


def test_a_padded_chat_token_is_refused_on_the_fabric_paths(client, agent, version):
    token = mint_chat(agent.project, channels={"general": {"read": True, "write": True}}).token
    ok = client.get("/api/fabric/addresses?name=general", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert ok.status_code != 401
    padded = client.get(
        "/api/fabric/addresses?name=general", HTTP_AUTHORIZATION=f"Bearer {token}=="
    )
    assert padded.status_code == 401
