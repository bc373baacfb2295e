from rest_framework import serializers

from channels_ingest.models import Channel
from tickets.models import Contact, Message, Ticket


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
