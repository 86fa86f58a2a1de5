"""Chat reads. Every entry point takes the project, so one project never reads another's rows:
an id of another project's object finds nothing, exactly like an unknown id."""

import base64
import binascii
import uuid
from dataclasses import dataclass

from django.db.models import Q

from tokens.models import Project
from tokens.selectors import as_uuid

from .errors import InvalidChannelName, InvalidCursor
from .models import Address, Conversation, Member, Message
from .names import clean_channel_name

PAGE_SIZE_DEFAULT = 10
PAGE_SIZE_MAX = 100


# --- Addresses and conversations ----------------------------------------------------------


def addresses_for(*, project: Project, name: str | None = None):
    qs = Address.objects.filter(project=project)
    if name is not None:
        try:
            qs = qs.filter(name=clean_channel_name(name))
        except InvalidChannelName:
            return qs.none()
    return qs


def address_for(*, project: Project, address_id) -> Address | None:
    """The project's address with this id (a UUID or its string), or None."""
    pk = as_uuid(address_id)
    if pk is None:
        return None
    return Address.objects.filter(project=project, pk=pk).first()


def address_by_name(*, project: Project, name: str) -> Address | None:
    try:
        name = clean_channel_name(name)
    except InvalidChannelName:
        return None
    return Address.objects.filter(project=project, name=name).first()


def conversations_for(*, project: Project):
    return Conversation.objects.filter(project=project).select_related("address")


def conversation_for(*, project: Project, conversation_id) -> Conversation | None:
    """The project's conversation with this id (= its address id), or None."""
    pk = as_uuid(conversation_id)
    if pk is None:
        return None
    return conversations_for(project=project).filter(pk=pk).first()


def conversation_by_name(*, project: Project, name: str) -> Conversation | None:
    try:
        name = clean_channel_name(name)
    except InvalidChannelName:
        return None
    return conversations_for(project=project).filter(address__name=name).first()


# --- Members ------------------------------------------------------------------------------


def members_present(*, conversation: Conversation):
    """Members in the conversation now (joined and not left), oldest join first."""
    return Member.objects.filter(conversation=conversation, left_at__isnull=True).order_by(
        "joined_at", "id"
    )


def members_of(*, conversation: Conversation):
    """Every member that ever joined, present or not."""
    return Member.objects.filter(conversation=conversation)


def member_for(*, conversation: Conversation, member_id: str) -> Member | None:
    return Member.objects.filter(conversation=conversation, member_id=member_id).first()


def member_states(*, conversation: Conversation, member_ids) -> dict[str, dict]:
    """{member_id: state} for those of `member_ids` that have a row."""
    rows = Member.objects.filter(conversation=conversation, member_id__in=set(member_ids))
    return dict(rows.values_list("member_id", "state"))


# --- Message history: keyset pages --------------------------------------------------------


def encode_cursor(message: Message) -> str:
    """Opaque cursor of a message's place in history: its (ts, id), url-safe."""
    raw = f"{message.ts!r}_{message.id.hex}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor) -> tuple[float, uuid.UUID]:
    if not isinstance(cursor, str) or not 1 <= len(cursor) <= 200:
        raise InvalidCursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts_text, id_hex = raw.split("_")
        ts = float(ts_text)
        pk = uuid.UUID(hex=id_hex)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor() from None
    if ts != ts or ts in (float("inf"), float("-inf")):
        raise InvalidCursor()
    return ts, pk


@dataclass(frozen=True)
class MessagePage:
    """One page of history, newest message first.

    `older` / `newer` say whether messages exist beyond the page in that direction; the
    cursors are those of the page's newest (`first_cursor`) and oldest (`last_cursor`) items,
    None on an empty page.
    """

    items: list
    older: bool
    newer: bool

    @property
    def first_cursor(self) -> str | None:
        return encode_cursor(self.items[0]) if self.items else None

    @property
    def last_cursor(self) -> str | None:
        return encode_cursor(self.items[-1]) if self.items else None


def messages_of(*, conversation: Conversation, include_hidden: bool = False, subtypes=None):
    qs = Message.objects.filter(conversation=conversation)
    if not include_hidden:
        qs = qs.filter(hidden=False)
    if subtypes is not None:
        qs = qs.filter(subtype__in=list(subtypes))
    return qs


def messages_page(
    *,
    conversation: Conversation,
    older_than: str | None = None,
    newer_than: str | None = None,
    limit: int = PAGE_SIZE_DEFAULT,
    include_hidden: bool = False,
    subtypes=None,
) -> MessagePage:
    """A page of at most `limit` messages, newest first.

    No cursor: the newest messages. `older_than=c`: the messages just older than the one `c`
    names; `newer_than=c`: those just newer. Pages are cut on the (conversation, ts, id)
    index, so a page deep in a long history costs what the first page costs. Raises
    InvalidCursor for a cursor this function did not make.
    """
    if older_than is not None and newer_than is not None:
        raise InvalidCursor("Give at most one cursor.")
    limit = max(1, min(int(limit), PAGE_SIZE_MAX))
    base = messages_of(conversation=conversation, include_hidden=include_hidden, subtypes=subtypes)
    if newer_than is not None:
        ts, pk = decode_cursor(newer_than)
        rows = list(base.filter(_newer(ts, pk)).order_by("ts", "id")[: limit + 1])
        items = rows[:limit][::-1]
        oldest = (items[-1].ts, items[-1].id) if items else (ts, pk)
        older = base.filter(_older(*oldest, inclusive=not items)).exists()
        return MessagePage(items=items, older=older, newer=len(rows) > limit)
    qs = base
    if older_than is not None:
        ts, pk = decode_cursor(older_than)
        qs = qs.filter(_older(ts, pk))
    rows = list(qs.order_by("-ts", "-id")[: limit + 1])
    items = rows[:limit]
    newer = False
    if older_than is not None:
        newest = (items[0].ts, items[0].id) if items else (ts, pk)
        newer = base.filter(_newer(*newest, inclusive=not items)).exists()
    return MessagePage(items=items, older=len(rows) > limit, newer=newer)


def _older(ts, pk, inclusive=False) -> Q:
    same = Q(ts=ts, id__lte=pk) if inclusive else Q(ts=ts, id__lt=pk)
    # The redundant `ts <= x` bound lets the database range-scan the keyset index from the
    # cursor; the OR alone makes PostgreSQL scan from one end of the conversation.
    return Q(ts__lte=ts) & (Q(ts__lt=ts) | same)


def _newer(ts, pk, inclusive=False) -> Q:
    same = Q(ts=ts, id__gte=pk) if inclusive else Q(ts=ts, id__gt=pk)
    return Q(ts__gte=ts) & (Q(ts__gt=ts) | same)
