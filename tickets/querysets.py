from datetime import timedelta

from django.db import connections, models
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

#: The text-search configuration for ticket search: "simple" (no stemming, no stop words) suits
#: names, handles and mixed-language text. Migration 0003's GIN indexes are built on the same expressions.
SEARCH_CONFIG = "simple"
#: The queue's "Breaching soon" view: a target due within this long.
BREACHING_SOON = timedelta(hours=1)


class ContactQuerySet(models.QuerySet):
    def ids_with_email(self, email: str) -> list[int]:
        """The ids of the contacts who are the person with this email address, in any case: by their own address,
        or that of one of their identities on any channel (a Slack profile's, an email's sender). One query, on
        the two addresses' indexes; none for an empty address."""
        if not email:
            return []
        identities = self.model.identities.rel.related_model.objects
        by_identity = identities.filter(email__iexact=email).values_list("contact_id", flat=True)
        return list(self.filter(email__iexact=email).values_list("pk", flat=True).union(by_identity))

    def with_email(self, email: str):
        return self.filter(pk__in=self.ids_with_email(email))


class TicketQuerySet(models.QuerySet):
    def open(self):
        return self.exclude(status__in=self.model.CLOSED_STATUSES)

    def requested_by_any(self, contact_ids: list[int]):
        """The tickets requested by any of these contacts (who are one person), merged ones included: merged into
        someone else's ticket, a request is still the person's own (``Ticket.conversation_home`` finds where its
        conversation lives now)."""
        return self.filter(requester_id__in=contact_ids)

    def record_customer_activity(self):
        """The requester wrote on these tickets: reopen them and refresh their activity, in one UPDATE.

        Counts and times are derived from the stored messages, so a replayed
        batch cannot double-count. The reopenings' timeline events are the caller's (``tickets.inbound``).
        """
        Status = self.model.Status
        messages = self.model.messages.rel.related_model.objects.filter(ticket=models.OuterRef("pk"))
        waiting = models.Q(status__in=self.model.REOPENED_BY_REQUESTER)
        return self.update(
            message_count=models.Subquery(
                messages.order_by().values("ticket").annotate(n=models.Count("id")).values("n")
            ),
            last_activity_at=Greatest(
                "last_activity_at",
                Coalesce(
                    models.Subquery(messages.order_by("-created_at").values("created_at")[:1]), "last_activity_at"
                ),
            ),
            status=models.Case(models.When(waiting, then=models.Value(Status.OPEN)), default="status"),
            resolved_at=models.Case(models.When(waiting, then=None), default="resolved_at"),
        )

    def for_list(self):
        """What a ticket list shows, in a fixed number of queries."""
        return (
            self.select_related("requester", "assignee", "channel", "category", "service")
            # The columns the console queue and the API list (TicketSerializer) show; building full
            # rows (the channel's JSON config and state, every user field) cost more than the query.
            .only(
                *("id", "subject", "status", "priority", "kind", "created_at", "last_activity_at", "message_count"),
                # The Due column (tickets.sla.due_state).
                *("resolved_at", "first_responded_at", "first_response_due_at", "resolution_due_at", "sla_paused_at"),
                *("first_response_warned_at", "first_response_breached_at"),
                *("resolution_warned_at", "resolution_breached_at"),
                *("requester__id", "requester__display_name", "assignee__id", "assignee__username"),
                *("channel__id", "channel__name", "channel__kind"),
                *(
                    "impact",
                    "urgency",
                    "priority_overridden",
                    "problem_id",
                    "category__id",
                    "category__name",
                    "service__id",
                    "service__name",
                ),
            )
            .order_by("-last_activity_at", "-id")
        )

    def view_counts(self):
        """How many tickets the console's shared views hold, in ONE aggregate query.

        Conditional ``COUNT(*) FILTER (WHERE ...)`` over the status and assignee columns: one pass over
        the table, whatever the view (an index on (status, assignee) did not help: the planner still prefers
        one sequential scan; figures in docs/benchmarks.md). The same for every agent, so the console caches
        it (``console.view_counts``).
        """
        Status = self.model.Status
        is_open = ~models.Q(status__in=self.model.CLOSED_STATUSES)
        now = timezone.now()
        return self.order_by().aggregate(
            unassigned=models.Count("pk", filter=is_open & models.Q(assignee=None)),
            open=models.Count("pk", filter=is_open),
            pending=models.Count("pk", filter=models.Q(status=Status.PENDING)),
            resolved=models.Count("pk", filter=models.Q(status=Status.RESOLVED)),
            breaching=models.Count("pk", filter=self._breaching(now)),
            breached=models.Count("pk", filter=self._breached(now)),
        )

    def breaching_soon(self, now, within=BREACHING_SOON):
        """Running SLA clocks (not Pending) whose next target falls due within ``within``, not yet breached."""
        return self.filter(self._breaching(now, within))

    def sla_breached(self, now):
        """Open tickets past a target they have not met (first response or resolution)."""
        return self.filter(self._breached(now))

    def _breaching(self, now, within=BREACHING_SOON):
        running = models.Q(status__in=[self.model.Status.NEW, self.model.Status.OPEN])
        first = models.Q(
            first_responded_at=None, first_response_due_at__gt=now, first_response_due_at__lte=now + within
        )
        return running & (first | models.Q(resolution_due_at__gt=now, resolution_due_at__lte=now + within))

    def _breached(self, now):
        is_open = ~models.Q(status__in=self.model.CLOSED_STATUSES)
        first = models.Q(first_responded_at=None, first_response_due_at__lte=now)
        return is_open & (first | models.Q(resolution_due_at__lte=now))

    def assigned_open(self, user):
        """``user``'s open tickets: an index read on the assignee, cheap enough to count on every request."""
        return self.open().filter(assignee=user)

    def search(self, text):
        """Tickets whose subject, message text or requester (name, identity handle or name) matches ``text``.

        PostgreSQL: full-text search (``websearch_to_tsquery``, so any user input is safe), served by the
        GIN expression indexes of migration 0003. Elsewhere (SQLite): ``icontains`` on the same fields.
        Messages and identities are matched by ``EXISTS`` subqueries, so a ticket is listed once however
        many of its messages match.
        """
        text = (text or "").strip()
        if not text:
            return self
        Message = self.model.messages.rel.related_model
        Contact = self.model._meta.get_field("requester").related_model
        Identity = Contact.identities.rel.related_model
        messages = Message.objects.filter(ticket=models.OuterRef("pk"))
        contacts = Contact.objects.filter(pk=models.OuterRef("requester_id"))
        identities = Identity.objects.filter(contact=models.OuterRef("requester_id"))
        if connections[self.db].vendor == "postgresql":
            # Only on PostgreSQL: django.contrib.postgres imports psycopg, which the embedded default lacks.
            from django.contrib.postgres.search import SearchQuery, SearchVector  # noqa: PLC0415

            query = SearchQuery(text, search_type="websearch", config=SEARCH_CONFIG)

            def matching(queryset, *fields):
                return queryset.alias(_match=SearchVector(*fields, config=SEARCH_CONFIG)).filter(_match=query)

            # The subject too is matched in a subquery: each branch is then one GIN bitmap scan, hashed
            # once, and the ticket scan only probes four hashes (no tsvector built per ticket row).
            subjects = self.model.objects.filter(pk=models.OuterRef("pk"))
            return self.filter(
                models.Exists(matching(subjects, "subject"))
                | models.Exists(matching(messages, "body"))
                | models.Exists(matching(contacts, "display_name"))
                | models.Exists(matching(identities, "handle", "display_name"))
            )
        handle = text.removeprefix("@") or text
        return self.filter(
            models.Q(subject__icontains=text)
            | models.Exists(messages.filter(body__icontains=text))
            | models.Exists(contacts.filter(display_name__icontains=text))
            | models.Exists(
                identities.filter(models.Q(handle__icontains=handle) | models.Q(display_name__icontains=text))
            )
        )


class MessageQuerySet(models.QuerySet):
    def with_delivery_keys(self, keys) -> dict:
        """The replies these delivery keys (``Message.delivery_key``) name, by key; a key naming none (another
        system's, or a reused id's) is left out. One query."""
        keys = {str(key) for key in keys}
        ids = {int(pk) for pk, _, _ in (key.partition("-") for key in keys) if pk.isdigit() and len(pk) < 19}
        return {message.delivery_key: message for message in self.filter(pk__in=ids) if message.delivery_key in keys}

    def public_for(self, contact_ids: list[int]):
        """What the person who is these contacts may read of a ticket: the public messages (never a note, a
        deleted message or a reply that failed to go out) of their own conversations. A conversation is theirs
        when they wrote in it, or when nobody did (one the desk opened to them, a DM); the conversations of other
        people's tickets merged into theirs are not."""
        Message = self.model
        inbound = Message.objects.filter(thread=models.OuterRef("thread_id"), direction=Message.Direction.INBOUND)
        theirs = inbound.filter(author_identity__contact_id__in=contact_ids)
        return (
            self.filter(direction__in=(Message.Direction.INBOUND, Message.Direction.OUTBOUND), deleted_at=None)
            .exclude(delivery_status=Message.DeliveryStatus.FAILED)
            .filter(
                (models.Q(thread__isnull=False) & (models.Exists(theirs) | ~models.Exists(inbound)))
                | models.Q(thread=None, author_identity__contact_id__in=contact_ids)
            )
        )

    def timeline(self):
        """Messages oldest first, with only what names their author (``Message.author_name``) joined in."""
        return (
            self.select_related("author_identity", "author_user")
            .only(
                *(f.name for f in self.model._meta.concrete_fields),
                "author_user__username",
                "author_user__first_name",
                "author_user__last_name",
                "author_identity__display_name",
                "author_identity__handle",
                "author_identity__external_id",
            )
            .order_by("created_at", "id")
        )

    def with_files(self):
        """Each message's attachments as a list in ``message.files``, in one more query however many messages
        carry files. (A list, not the ``attachments`` manager: filling a manager's cache builds a queryset
        per message, which cost more than the query.)"""
        Attachment = self.model.attachments.rel.related_model
        files = Attachment.objects.defer("external_ref").order_by("id")
        return self.prefetch_related(models.Prefetch("attachments", queryset=files, to_attr="files"))

    def changed_since(self, place):
        """Messages in a version ``place`` (tickets.changes.Place) lacks: stored, edited, deleted or retried since."""
        return self.filter(changed_mark__gte=place.settled).exclude(place.held_versions("changed_mark"))

    def stored_since(self, place):
        """Messages stored since ``place`` that it has no version of (changes to older ones left out)."""
        return self.filter(changed_mark__gte=place.settled, stored_mark__gte=place.settled).exclude(pk__in=place.ids)

    def undelivered(self):
        return self.filter(direction=self.model.Direction.OUTBOUND, delivery_status=self.model.DeliveryStatus.QUEUED)

    def with_external_ids(self, ids):
        """Messages the platform knows by one of ``ids``, through the index ``message_external_id`` at any size.

        The index leaves out messages without a platform id; PostgreSQL proves an ``IN`` list lies inside it
        only for lists of up to 100 ids, and scanned every message for a longer one (an ingest batch of 500). The
        explicit ``external_id <> ''`` lets it use the index for any list."""
        return self.filter(external_id__in=ids).exclude(external_id="")


class MacroQuerySet(models.QuerySet):
    def usable_by(self, user):
        """The shared macros and ``user``'s own, shared first, then by name."""
        return self.filter(models.Q(owner=None) | models.Q(owner=user)).order_by(
            models.F("owner").asc(nulls_first=True), "name", "id"
        )


class TicketEventQuerySet(models.QuerySet):
    def since(self, place):
        """Events recorded since ``place`` (tickets.changes.Place) that it does not hold."""
        return self.filter(stored_mark__gte=place.settled).exclude(place.held_versions("stored_mark"))

    def timeline(self):
        """Events oldest first, with only what the timeline shows and names their actor."""
        return (
            self.select_related("actor")
            .only(
                "id",
                "ticket_id",
                "kind",
                "old_value",
                "new_value",
                "actor_label",
                "reason",
                "created_at",
                "stored_mark",
                "actor__id",
                "actor__username",
                "actor__first_name",
                "actor__last_name",
            )
            .order_by("created_at", "id")
        )
