"""Web calls, seed 004 (`POST /web_call/get_token`): a LiveKit room for one of the project's
assistants and a participant token that dispatches it with its templates filled."""

from dataclasses import dataclass

from django.db import transaction

from tokens.errors import NotFound

from .. import livekit, prompts, selectors
from ..errors import LimitExceeded, TemplateTooLong, Unprocessable
from ..models import Room
from .livekit import livekit_credentials_required, livekit_token_issue, random_suffix, room_create

TOO_LARGE = "The assistant's prompt filled with this metadata is too large."


@dataclass(frozen=True)
class WebCall:
    room: Room
    token: str


def web_call_issue(
    *, project, assistant_id, metadata: dict, api_key=None, client_ip: str | None = None
) -> WebCall:
    """A LiveKit room `<assistant_id>_<8 hex>` and a participant token that dispatches the
    assistant with its templates filled from `metadata`."""
    assistant = selectors.assistant_for(project=project, assistant_id=assistant_id)
    if assistant is None:
        raise NotFound("Assistant not found.")
    credentials = livekit_credentials_required(project=project)
    # A character is at least a byte: past this many characters the dispatch metadata is
    # over LiveKit's limit whatever they are (the exact check, in bytes, comes later).
    limit = livekit.METADATA_MAX_BYTES
    try:
        prompt = prompts.render(assistant.prompt_template, metadata, max_chars=limit)
        first = prompts.render(assistant.first_message_template, metadata, max_chars=limit)
    except TemplateTooLong:
        raise Unprocessable(TOO_LARGE, field="metadata") from None
    identity = f"web_{random_suffix(12)}"
    with transaction.atomic():
        room = room_create(
            project=project, prefix=str(assistant.pk), assistant=assistant, metadata=metadata
        )
        try:
            issued = livekit_token_issue(
                project=project,
                identity=identity,
                room=room.name,
                dispatches=[
                    livekit.dispatch(
                        assistant.dispatch_name,
                        {
                            "assistant_id": str(assistant.pk),
                            "room": room.name,
                            "prompt": prompt,
                            "first_message": first,
                            "metadata": metadata,
                        },
                    )
                ],
                grants={"assistant_id": str(assistant.pk)},
                api_key=api_key,
                client_ip=client_ip,
                fields={"dispatch": "metadata"},
                credentials=credentials,
                sources=livekit.VOICE_SOURCES,
            )
        except LimitExceeded as exc:
            raise Unprocessable(TOO_LARGE, field=exc.field) from None
    return WebCall(room=room, token=issued.token)
