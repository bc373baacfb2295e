from django.db import transaction
from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from tickets.itil import ItilError, classify, override_priority
from tickets.models import Message, Ticket
from tickets.replies import ReplyError, reply_to_ticket
from tickets.updates import UNCHANGED, TicketUpdateError, update_ticket

from .serializers import (
    FieldErrorsSerializer,
    MessageSerializer,
    ReplyInputSerializer,
    TicketDetailSerializer,
    TicketSerializer,
    TicketUpdateSerializer,
)

#: The fields ``tickets.itil.classify`` sets.
CLASSIFICATION = ("kind", "category", "service", "impact", "urgency")


class TicketPagination(CursorPagination):
    ordering = ("-last_activity_at", "-id")


class TicketViewSet(viewsets.ReadOnlyModelViewSet):
    """Tickets for agents: list and read them, change their fields (PATCH), reply."""

    pagination_class = TicketPagination
    #: ?status=, ?kind= (incident, service_request, problem, change), ?category=<id>
    filterset_fields = ["status", "kind", "category"]

    def get_queryset(self):
        # Channel credentials are encrypted; tickets only show the channel's name.
        tickets = Ticket.objects.for_list().defer("channel__secrets")
        if self.action in ("retrieve", "partial_update"):
            tickets = tickets.prefetch_related(Prefetch("messages", queryset=Message.objects.timeline()))
        return tickets

    def get_serializer_class(self):
        return TicketDetailSerializer if self.action in ("retrieve", "partial_update") else TicketSerializer

    @extend_schema(request=ReplyInputSerializer, responses={201: MessageSerializer, 400: FieldErrorsSerializer})
    @action(detail=True, methods=["post"])
    def reply(self, request, pk=None):
        """Queue a reply to the requester on the ticket's channel conversation."""
        ticket = self.get_object()
        reply = ReplyInputSerializer(data=request.data)
        reply.is_valid(raise_exception=True)
        try:
            message = reply_to_ticket(ticket=ticket, author=request.user, body=reply.validated_data["body"])
        except ReplyError as exc:
            raise ValidationError({"body": [str(exc)]}) from exc
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TicketUpdateSerializer, responses={200: TicketDetailSerializer, 400: FieldErrorsSerializer})
    def partial_update(self, request, pk=None):
        """Change the fields sent, through the same rules as the console, all or nothing: impact and urgency set
        the priority from the matrix; a priority of one's own needs ``priority_reason``; only agents are
        assigned. Each real change is an event on the ticket's timeline."""
        ticket = self.get_object()
        update = TicketUpdateSerializer(data=request.data)
        update.is_valid(raise_exception=True)
        data = update.validated_data
        try:
            with transaction.atomic():
                classification = {field: data[field] for field in CLASSIFICATION if field in data}
                if classification:
                    classify(ticket, actor=request.user, **classification)
                if "priority" in data:
                    override_priority(
                        ticket, actor=request.user, priority=data["priority"], reason=data.get("priority_reason", "")
                    )
                update_ticket(
                    ticket=ticket,
                    actor=request.user,
                    status=data.get("status"),
                    assignee=data.get("assignee", UNCHANGED),
                )
        except (ItilError, TicketUpdateError) as exc:
            raise ValidationError({"non_field_errors": [str(exc)]}) from exc
        return Response(TicketDetailSerializer(self.get_queryset().get(pk=ticket.pk)).data)
