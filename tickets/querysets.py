from django.db import models


class TicketQuerySet(models.QuerySet):
    def open(self):
        return self.exclude(status__in=self.model.CLOSED_STATUSES)

    def for_list(self):
        """What a ticket list shows, in a fixed number of queries."""
        return self.select_related("requester", "assignee", "channel", "queue").order_by("-last_activity_at", "-id")


class MessageQuerySet(models.QuerySet):
    def timeline(self):
        return self.select_related("author_identity", "author_user", "thread").order_by("created_at", "id")

    def undelivered(self):
        return self.filter(direction=self.model.Direction.OUTBOUND, delivery_status=self.model.DeliveryStatus.QUEUED)
