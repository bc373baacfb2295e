from django.contrib.auth import get_user_model
from rest_framework import serializers

from channels_ingest.models import Channel
from tickets.itil import REASON_LENGTH
from tickets.models import Category, Contact, Message, Service, Ticket


class ChannelSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Channel
        fields = ["id", "name", "kind"]


class RequesterSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = ["id", "display_name"]


class TicketSerializer(serializers.ModelSerializer):
    channel = ChannelSummarySerializer(read_only=True, allow_null=True)
    requester = RequesterSerializer(read_only=True)
    assignee = serializers.CharField(
        source="assignee.username", read_only=True, allow_null=True, help_text="The assigned agent's username."
    )
    category = serializers.CharField(
        source="category.name", read_only=True, allow_null=True, help_text="The category's name (ITIL)."
    )
    category_id = serializers.IntegerField(read_only=True, allow_null=True)
    service = serializers.CharField(
        source="service.name", read_only=True, allow_null=True, help_text="The affected service's name (ITIL)."
    )

    class Meta:
        model = Ticket
        fields = [
            "id",
            "subject",
            "status",
            "priority",
            "kind",
            "impact",
            "urgency",
            "category",
            "category_id",
            "service",
            "channel",
            "requester",
            "assignee",
            "created_at",
            "last_activity_at",
            "message_count",
        ]
        read_only_fields = fields


class MessageSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author_name", read_only=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "direction",
            "author",
            "body",
            "created_at",
            "edited_at",
            "deleted_at",
            "delivery_status",
            "delivery_error",
            "delivery_attempts",
        ]
        read_only_fields = fields


class TicketDetailSerializer(TicketSerializer):
    messages = MessageSerializer(many=True, read_only=True)

    class Meta(TicketSerializer.Meta):
        fields = [*TicketSerializer.Meta.fields, "priority_overridden", "problem", "messages"]
        read_only_fields = fields


class ReplyInputSerializer(serializers.Serializer):
    body = serializers.CharField(help_text="The reply text; the ticket's channel may limit its length.")


class FieldErrorsSerializer(serializers.Serializer):
    """The shape of a 400: error messages per field."""

    body = serializers.ListField(child=serializers.CharField())


class TicketUpdateSerializer(serializers.Serializer):
    """What an agent may change on a ticket (PATCH): only the fields sent change, each an event on its timeline,
    as in the console. Ids name categories and services; a username names the assignee (null: nobody)."""

    status = serializers.ChoiceField(choices=Ticket.Status.choices, required=False)
    assignee = serializers.CharField(
        required=False, allow_null=True, help_text="An active agent's username, or null to unassign."
    )
    priority = serializers.ChoiceField(
        choices=Ticket.Priority.choices,
        required=False,
        help_text="Replaces the priority impact x urgency gives: needs priority_reason.",
    )
    priority_reason = serializers.CharField(required=False, allow_blank=True, max_length=REASON_LENGTH)
    kind = serializers.ChoiceField(choices=Ticket.Kind.choices, required=False)
    category_id = serializers.PrimaryKeyRelatedField(
        source="category", queryset=Category.objects.all(), required=False, allow_null=True
    )
    service_id = serializers.PrimaryKeyRelatedField(
        source="service", queryset=Service.objects.all(), required=False, allow_null=True
    )
    impact = serializers.ChoiceField(choices=Ticket.Level.choices, required=False)
    urgency = serializers.ChoiceField(choices=Ticket.Level.choices, required=False)

    def validate_assignee(self, username):
        if username is None:
            return None
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise serializers.ValidationError(f"No active user named {username!r}.")
        return user
