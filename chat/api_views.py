"""Roomkey's own chat API for API consumers (a customer's backend), with DRF's conventions.

Authenticated with the project's API key like every /api/v1 endpoint; every queryset comes
from a tenant-scoped selector, so another project's address or conversation is the same 404
as an unknown one. Writes go through chat.services: a message created here is stored and fanned
out exactly like one a client publishes on the relay.
"""

from django.db import IntegrityError
from django.http import Http404
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from tokens.errors import BadInput, ContractErrorsMixin, NotFound

from . import selectors, services
from .api_pagination import AFTER, BEFORE, ListPagination, MemberPagination, history_links
from .api_serializers import (
    API_USER_ID,
    AddressSerializer,
    AddressUpdateSerializer,
    ConversationSerializer,
    MemberSerializer,
    MessageCreateSerializer,
    MessageListQuerySerializer,
    MessageSerializer,
)
from .errors import InvalidCursor


class _ChatAPIMixin(ContractErrorsMixin):
    """Every error in DRF's format (tokens.errors.DRF_ERRORS), request-body failures and
    unexpected exceptions included."""

    limit_scope = "chat"

    @property
    def project(self):
        return self.request.user.project

    def get_object(self):
        # One answer for every miss (unknown id, malformed id, another project's object).
        try:
            return super().get_object()
        except Http404:
            raise NotFound() from None


class AddressViewSet(_ChatAPIMixin, viewsets.ModelViewSet):
    """/api/v1/addresses: list (?name=), create, retrieve, update (display name), delete."""

    serializer_class = AddressSerializer
    pagination_class = ListPagination

    def get_queryset(self):
        # An invalid name (reserved, control characters, too long) names no address.
        name = self.request.query_params.get("name") if self.action == "list" else None
        return selectors.addresses_for(project=self.project, name=name)

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return AddressUpdateSerializer
        return AddressSerializer

    def perform_create(self, serializer):
        try:
            serializer.instance = services.address_create(
                project=self.project, **serializer.validated_data
            )
        except IntegrityError:  # the name is taken (perhaps by a concurrent request)
            raise ValidationError(
                {"name": ["An address with this name already exists."]}, code="unique"
            ) from None

    def perform_update(self, serializer):
        serializer.instance = services.address_update(
            address=serializer.instance,
            display_name=serializer.validated_data.get(
                "display_name", serializer.instance.display_name
            ),
        )

    def perform_destroy(self, instance):
        services.address_delete(address=instance)


class ConversationViewSet(_ChatAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                          viewsets.GenericViewSet):  # fmt: skip
    """/api/v1/conversations: list, retrieve; …/{id}/messages; …/{id}/members."""

    serializer_class = ConversationSerializer
    pagination_class = ListPagination

    def get_queryset(self):
        return selectors.conversations_for(project=self.project)

    @action(detail=True, methods=["get", "post"])
    def messages(self, request, pk=None):
        conversation = self.get_object()
        if request.method == "POST":
            return self._send(request, conversation)
        query = MessageListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        cursors = query.validated_data
        try:
            page = selectors.messages_page(
                conversation=conversation,
                older_than=cursors.get(BEFORE),
                newer_than=cursors.get(AFTER),
                limit=cursors["page_size"],
            )
        except InvalidCursor as exc:
            raise BadInput(exc.message, field=AFTER if AFTER in cursors else BEFORE) from None
        next_url, previous_url = history_links(request, page)
        return Response(
            {
                "next": next_url,
                "previous": previous_url,
                "results": MessageSerializer(page.items, many=True).data,
            }
        )

    def _send(self, request, conversation):
        serializer = MessageCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        message = services.message_send(
            conversation=conversation,
            member_id=data.get("user_id", API_USER_ID),
            user_name=data.get("user_name", ""),
            text=data["text"],
            metadata=data.get("metadata", {}),
            details=data.get("details", {}),
            subtype=data.get("subtype", "chat"),
        )
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["get"])
    def members(self, request, pk=None):
        conversation = self.get_object()
        paginator = MemberPagination()
        page = paginator.paginate_queryset(
            selectors.members_of(conversation=conversation), request, view=self
        )
        return paginator.get_paginated_response(MemberSerializer(page, many=True).data)
