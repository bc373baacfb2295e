from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from tickets.models import Message, Ticket
from tickets.replies import ReplyError, reply_to_ticket

from .serializers import (
    FieldErrorsSerializer,
    MessageSerializer,
    ReplyInputSerializer,
    TicketDetailSerializer,
    TicketSerializer,
)


class TicketPagination(CursorPagination):
    ordering = ("-last_activity_at", "-id")


class TicketViewSet(viewsets.ReadOnlyModelViewSet):
    pagination_class = TicketPagination
    #: ?status=, ?kind= (incident, service_request, problem, change), ?category=<id>
    filterset_fields = ["status", "kind", "category"]

    def get_queryset(self):
        # Channel credentials are encrypted; tickets only show the channel's name.
        tickets = Ticket.objects.for_list().defer("channel__secrets")
        if self.action == "retrieve":
            tickets = tickets.prefetch_related(Prefetch("messages", queryset=Message.objects.timeline()))
        return tickets

    def get_serializer_class(self):
        return TicketDetailSerializer if self.action == "retrieve" else TicketSerializer

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
