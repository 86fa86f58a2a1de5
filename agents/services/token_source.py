"""LiveKit's token-source contract (`POST /api/v1/livekit/token-source`): a LiveKit token
for what the client asks, within what the project lets clients set."""

from django.db import transaction

from tokens.errors import NotFound

from .. import livekit, selectors
from ..errors import FieldsNotAllowed, RoomEnded, Unprocessable
from ..models import Room
from .livekit import IssuedLiveKit, livekit_credentials_required, livekit_token_issue, random_suffix

# The request's names for the values LiveKit's limits are checked on.
TOKEN_SOURCE_LABELS = {
    "identity": "participant_identity",
    "name": "participant_name",
    "metadata": "participant_metadata",
    "attributes": "participant_attributes",
    "room": "room_name",
    "room_config": "room_config",
    "dispatch": "room_config",
}


def token_source_issue(
    *, project, request: dict, api_key=None, client_ip: str | None = None
) -> IssuedLiveKit:
    """LiveKit's token-source contract: `request` holds the fields the client sent (already
    shape-checked). Fields the project does not let clients set raise FieldsNotAllowed; an
    agent dispatch must name one of the project's agents or assistants; a room of another
    project is NotFound, an ended one RoomEnded."""
    config = selectors.livekit_config(project=project)
    allowed = selectors.token_source_fields(config=config)
    refused = sorted(name for name in request if name not in allowed)
    if refused:
        raise FieldsNotAllowed(refused)
    credentials = livekit_credentials_required(project=project, config=config)
    dispatches = (request.get("room_config") or {}).get("agents") or []
    if dispatches:
        known = selectors.dispatch_names(project=project)
        unknown = sorted({d["agentName"] for d in dispatches} - known)
        if unknown:
            raise Unprocessable(
                f"room_config names agents this project does not have: {', '.join(unknown)}.",
                field="room_config",
            )
    participant = {
        "identity": request.get("participant_identity") or f"participant_{random_suffix(12)}",
        "room": request.get("room_name") or f"room_{random_suffix(12)}",
        "name": request.get("participant_name") or "",
        "metadata": request.get("participant_metadata") or "",
        "attributes": request.get("participant_attributes") or None,
        "dispatches": dispatches,
    }
    # Every check before the room is recorded: a refused request leaves nothing behind.
    livekit.check_limits(**participant, fields=TOKEN_SOURCE_LABELS)
    with transaction.atomic():
        _room_for(project, participant["room"])
        return livekit_token_issue(
            project=project,
            **participant,
            grants={"source": "token-source"},
            api_key=api_key,
            client_ip=client_ip,
            fields=TOKEN_SOURCE_LABELS,
            credentials=credentials,
        )


def _room_for(project, name: str) -> Room:
    """The room called `name`, recorded for `project` on first use. Every room a project's key
    can reach is that project's: room names are one namespace on a LiveKit server that
    projects may share (the settings' credentials), so another project's room — a web call, a
    WebRTC session, or a name its clients asked for first — is NotFound, as an unknown object
    is anywhere else; an ended room takes no new participants (RoomEnded). Recording the room
    also lets staff end it (admin: Rooms), which revokes its tokens."""
    room, _ = Room.objects.get_or_create(
        name=name, defaults={"project": project, "metadata": {"source": "token-source"}}
    )
    if room.project_id != project.pk:
        raise NotFound()
    if room.ended_at is not None:
        raise RoomEnded()
    return room
