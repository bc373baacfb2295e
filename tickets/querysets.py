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
            self.select_related("requester", "assignee", "channel")
            # The columns the console queue and the API list (TicketSerializer) show; building full
            # rows (the channel's JSON config and state, every user field) cost more than the query.
            .only(
                *("id", "subject", "status", "priority", "kind", "created_at", "last_activity_at", "message_count"),
                *("requester__id", "requester__display_name", "assignee__id", "assignee__username"),
                *("channel__id", "channel__name", "channel__kind"),
            )
            .order_by("-last_activity_at", "-id")
        )


class MessageQuerySet(models.QuerySet):
    def timeline(self):
        """Messages oldest first, with only what names their author (``Message.author_name``) joined in."""
        return (
            self.select_related("author_identity", "author_user")
            .only(
                *(f.name for f in self.model._meta.concrete_fields),
                "author_user__username", "author_user__first_name", "author_user__last_name",
                "author_identity__display_name", "author_identity__handle", "author_identity__external_id",
            )
            .order_by("created_at", "id")
        )

    def undelivered(self):
        return self.filter(direction=self.model.Direction.OUTBOUND, delivery_status=self.model.DeliveryStatus.QUEUED)
