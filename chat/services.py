"""Chat writes: chat tokens, addresses, membership, member state and messages.

Every publish path (the relay's `chat.publish`, Fabric `POST /api/fabric/messages`, the DRF
API) calls `message_send`, which stores the message and, once the transaction commits, fans it
out through the channel layer to every subscriber in every server process. Member changes fan
out the same way. All functions are keyword-only and atomic.
"""

import time
import uuid
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from tokens import kinds
from tokens import services as token_services
from tokens.live import group_send
from tokens.models import ApiKey, IssuedToken, Project

from . import events
from .models import Address, Conversation, Member, Message
from .names import clean_channel_name

# --- Chat tokens (seed 000) ---------------------------------------------------------------


def chat_token_issue(
    *,
    project: Project,
    ttl_minutes: int,
    channels: dict[str, dict],
    member_id: str | None,
    state: dict,
    relay_url: str,
    api_key: ApiKey | None = None,
    client_ip: str | None = None,
) -> token_services.Issued:
    """A SignalWire-compatible chat token for `member_id` (a random UUID when None), whose
    `ch` header names the relay at `relay_url`. The channels and state stay on the registry
    row, so the token stays small (under 1 KB at 500 channels)."""
    return token_services.token_issue(
        project=project,
        kind=kinds.CHAT.name,
        subject=member_id or str(uuid.uuid4()),
        ttl=timedelta(minutes=ttl_minutes),
        grants={"channels": channels, "state": state},
        api_key=api_key,
        client_ip=client_ip,
        headers={"ch": relay_url},
    )


# --- Addresses and conversations ----------------------------------------------------------


def address_get_or_create(*, project: Project, name: str, display_name: str = "") -> Address:
    """The project's address called `name` (NFC-normalised), made with its conversation on
    first use. Raises chat.errors.InvalidChannelName for a name chat tokens could not carry.

    Concurrent first uses race on the unique (project, name) constraint; the loser reads the
    winner's row.
    """
    name = clean_channel_name(name)
    address = Address.objects.filter(project=project, name=name).first()
    if address is not None:
        return address
    try:
        with transaction.atomic():
            address = Address.objects.create(project=project, name=name, display_name=display_name)
            Conversation.objects.create(address=address, project=project)
    except IntegrityError:
        address = Address.objects.get(project=project, name=name)
    return address


@transaction.atomic
def address_create(*, project: Project, name: str, display_name: str = "") -> Address:
    """A new address and its conversation; IntegrityError if the name is taken."""
    address = Address.objects.create(
        project=project, name=clean_channel_name(name), display_name=display_name
    )
    Conversation.objects.create(address=address, project=project)
    return address


def address_update(*, address: Address, display_name: str | None = None) -> Address:
    """Change what may change: the display name. The name is what tokens grant, so it is
    fixed for the life of the address."""
    if display_name is not None:
        address.display_name = display_name
        address.save(update_fields=["display_name"])
    return address


def address_delete(*, address: Address) -> None:
    """Delete an address with its conversation, members and history."""
    address.delete()


def conversation_for_address(*, address: Address) -> Conversation:
    """The address's conversation (made now for an address that somehow lacks one)."""
    conversation, _ = Conversation.objects.get_or_create(
        address=address, defaults={"project_id": address.project_id}
    )
    conversation.address = address
    return conversation


def conversation_for_name(*, project: Project, name: str) -> Conversation:
    """The conversation of the channel `name`, made on first use."""
    return conversation_for_address(address=address_get_or_create(project=project, name=name))


# --- Members ------------------------------------------------------------------------------


def _member_row(conversation: Conversation, member_id: str, state: dict | None) -> Member:
    member = Member.objects.filter(conversation=conversation, member_id=member_id).first()
    if member is not None:
        return member
    try:
        with transaction.atomic():
            return Member.objects.create(
                conversation=conversation,
                member_id=member_id,
                state=state if state is not None else {},
                left_at=timezone.now(),  # not present until joined below
            )
    except IntegrityError:
        return Member.objects.get(conversation=conversation, member_id=member_id)


@transaction.atomic
def member_join(
    *,
    conversation: Conversation,
    member_id: str,
    state: dict | None = None,
    connection: bool = False,
) -> tuple[Member, bool]:
    """Make `member_id` present in the conversation; returns (member, joined_now).

    `connection` counts a relay socket subscribing (the member leaves when its last socket
    does); a Fabric join or send passes False. `state` seeds a new member's state (a chat
    token's `state`); an existing member keeps its own. Subscribers hear
    `chat.member.joined` when the member was not present before.
    """
    _member_row(conversation, member_id, state)
    member = Member.objects.select_for_update().get(conversation=conversation, member_id=member_id)
    joined_now = member.left_at is not None
    updates = {}
    if joined_now:
        member.left_at = None
        member.joined_at = timezone.now()
        updates.update(left_at=None, joined_at=member.joined_at)
    if connection:
        updates["connections"] = F("connections") + 1
    if updates:
        Member.objects.filter(pk=member.pk).update(**updates)
        if connection:
            member.connections += 1
    if joined_now:
        _publish_member(conversation, member, "joined")
    return member, joined_now


def member_tokens_revoke(*, member: Member, by: str = "", reason: str = "member revoked") -> int:
    """Revoke every chat token issued to this member id in the conversation's project (a chat
    token names a member, not one channel); their relay sockets close in every process.
    Returns how many this call revoked."""
    return token_services.token_revoke_many(
        queryset=IssuedToken.objects.filter(
            project_id=member.conversation.project_id,
            kind=kinds.CHAT.name,
            subject=member.member_id,
        ),
        by=by,
        reason=reason,
    )


@transaction.atomic
def member_leave(
    *, conversation: Conversation, member_id: str, connection: bool = False
) -> Member | None:
    """A relay socket of the member leaves (`connection` True) or the member leaves outright.

    The member is marked left, and subscribers hear `chat.member.left`, when no relay socket
    of it remains. Returns the member, or None if it never joined.
    """
    member = (
        Member.objects.select_for_update()
        .filter(conversation=conversation, member_id=member_id)
        .first()
    )
    if member is None:
        return None
    if connection and member.connections > 0:
        member.connections -= 1
    elif not connection:
        member.connections = 0
    if member.connections == 0 and member.left_at is None:
        member.left_at = timezone.now()
        member.save(update_fields=["connections", "left_at"])
        _publish_member(conversation, member, "left")
    else:
        member.save(update_fields=["connections"])
    return member


@transaction.atomic
def member_set_state(*, conversation: Conversation, member_id: str, state: dict) -> Member:
    """Replace the member's state in this conversation (validated by the caller: a JSON
    object of at most STATE_MAX characters). Subscribers hear `chat.member.updated`."""
    member = _member_row(conversation, member_id, state)
    Member.objects.filter(pk=member.pk).update(state=state)
    member.state = state
    _publish_member(conversation, member, "updated")
    return member


# --- Messages -----------------------------------------------------------------------------


def _now_ts() -> float:
    return time.time()


def message_send(
    *,
    conversation: Conversation,
    member_id: str,
    text: str,
    metadata: dict | None = None,
    details: dict | None = None,
    subtype: str = Message.SUBTYPE_CHAT,
    user_name: str = "",
    from_address_id: uuid.UUID | None = None,
) -> Message:
    """Store a message from `member_id`, then fan it out to the conversation's subscribers.

    Input is validated by the caller (chat.validation enforces the documented limits). The fan
    out happens after commit, so no subscriber ever sees a message that was rolled back; a
    caller already in a transaction delays it until its own commit.
    """
    with transaction.atomic():
        message = Message.objects.create(
            conversation=conversation,
            user_id=member_id,
            user_name=user_name,
            from_address_id=from_address_id,
            ts=_now_ts(),
            text=text,
            metadata=metadata or {},
            details=details or {},
            subtype=subtype,
        )
        Conversation.objects.filter(pk=conversation.pk).update(last_message_at=timezone.now())
        message.conversation = conversation
        state = (
            Member.objects.filter(conversation=conversation, member_id=member_id)
            .values_list("state", flat=True)
            .first()
        )
        event = events.message_event(message, conversation=conversation, member_state=state)
        group = events.channel_group(conversation.project_id, _address_name(conversation))
        transaction.on_commit(lambda: group_send(group, event))
    return message


def message_hide(*, message: Message) -> bool:
    """Keep a message out of every history from now on. True if this call hid it."""
    return bool(Message.objects.filter(pk=message.pk, hidden=False).update(hidden=True))


def message_unhide(*, message: Message) -> bool:
    return bool(Message.objects.filter(pk=message.pk, hidden=True).update(hidden=False))


# --- Fan-out ------------------------------------------------------------------------------


def _address_name(conversation: Conversation) -> str:
    # `conversation.address` is usually loaded already; the query is the fallback.
    return conversation.address.name


def _publish_member(conversation: Conversation, member: Member, change: str) -> None:
    event = events.member_event(member, change=change, channel=_address_name(conversation))
    group = events.channel_group(conversation.project_id, _address_name(conversation))
    transaction.on_commit(lambda: group_send(group, event))
