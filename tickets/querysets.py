from django.db import models
from django.db.models.functions import Coalesce, Greatest


class TicketQuerySet(models.QuerySet):
    def open(self):
        return self.exclude(status__in=self.model.CLOSED_STATUSES)

    def record_customer_activity(self):
        """The requester wrote on these tickets: reopen them and refresh their activity, in one UPDATE.

        Counts and times are derived from the stored messages, so a replayed
        batch cannot double-count.
        """
        Status = self.model.Status
        messages = self.model.messages.rel.related_model.objects.filter(ticket=models.OuterRef("pk"))
        waiting = models.Q(status__in=[Status.PENDING, *self.model.CLOSED_STATUSES])
        return self.update(
            message_count=models.Subquery(
                messages.order_by().values("ticket").annotate(n=models.Count("id")).values("n")
            ),
            last_activity_at=Greatest(
                "last_activity_at",
                Coalesce(models.Subquery(messages.order_by("-created_at").values("created_at")[:1]), "last_activity_at"),
            ),
            status=models.Case(models.When(waiting, then=models.Value(Status.OPEN)), default="status"),
            resolved_at=models.Case(models.When(waiting, then=None), default="resolved_at"),
        )

    def for_list(self):
        """What a ticket list shows, in a fixed number of queries."""
        return (
            self.select_related("requester", "assignee", "channel", "queue")
            .defer("channel__secrets")  # encrypted; a list never needs them
            .order_by("-last_activity_at", "-id")
        )


class MessageQuerySet(models.QuerySet):
    def timeline(self):
        return self.select_related("author_identity", "author_user").order_by("created_at", "id")

    def undelivered(self):
        return self.filter(direction=self.model.Direction.OUTBOUND, delivery_status=self.model.DeliveryStatus.QUEUED)
