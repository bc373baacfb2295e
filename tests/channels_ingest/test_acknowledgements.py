"""Automatic acknowledgements (``auto_ack``): once per new ticket, never to robots, at most a few per requester
and hour; public messages keep their public acknowledgement (``public_ack``)."""

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channel_adapters import locmem
from channel_adapters.base import ConfigError, Sender
from channels_ingest import acknowledgements, ingest
from channels_ingest.acknowledgements import validate
from channels_ingest.models import Channel, InboundMessage
from tests.factories import message
from tests.helpers import detail_url, outbound, poll_and_ingest, text_of
from tickets import sla
from tickets.models import Calendar, Message, SlaPolicy, Ticket, TicketEvent

AUTO_ACK = {"subject": "[#{ticket}] {subject}", "body": "Hello {name}, ticket #{ticket} is open: {subject}."}


@pytest.fixture
def channel(db):
    return Channel.objects.create(kind="locmem", name="mail", config={"inbox": "mail", "auto_ack": AUTO_ACK})


def mail(external_id, address="ann@example.com", *, name="Ann", minute=0, thread=None, **fields):
    """A message from ``address``, as an email channel gives it."""
    person = Sender(namespace="locmem", external_id=address.lower(), display_name=name, email=address)
    envelope = message(external_id, thread=thread, minute=minute, text=f"Problem {external_id}")
    return replace(envelope, sender=person, **fields)


def acks():
    return list(Message.objects.filter(direction="outbound", meta__auto_ack=True).order_by("ticket_id"))


@pytest.mark.django_db
def test_a_new_ticket_is_acknowledged_as_the_template_says(channel):
    locmem.inbox["mail"] = [mail("a")]
    poll_and_ingest(channel)
    ticket = Ticket.objects.get()
    (ack,) = outbound(ticket)
    assert ack.body == f"Hello Ann, ticket #{ticket.pk} is open: Problem a."
    assert ack.meta == {"auto_ack": True, "subject": f"[#{ticket.pk}] Problem a"}
    assert ack.author_name == "System"
    assert ack.delivery_status == "queued"
    ticket.refresh_from_db()
    assert ticket.status == "open"
    assert TicketEvent.objects.get(ticket=ticket).reason == "automatic acknowledgement"


@pytest.mark.django_db
def test_without_a_subject_template_the_marker_has_none(channel):
    Channel.objects.filter(pk=channel.pk).update(config={"inbox": "mail", "auto_ack": {"body": "#{ticket}"}})
    locmem.inbox["mail"] = [mail("a")]
    poll_and_ingest(channel)
    (ack,) = acks()
    assert ack.meta == {"auto_ack": True}


@pytest.mark.django_db
def test_each_ticket_is_acknowledged_once_however_often_its_message_comes(channel):
    """The same message polled again, its row ingested again, and a second message on the ticket: one ack."""
    locmem.inbox["mail"] = [mail("a"), mail("a")]
    poll_and_ingest(channel)
    InboundMessage.objects.update(status=InboundMessage.Status.PENDING)
    ingest.ingest_channel(channel.pk)
    locmem.inbox["mail"] += [mail("a"), mail("a.1", thread="a", minute=1)]
    poll_and_ingest(channel)
    assert Ticket.objects.get().messages.filter(direction="inbound").count() == 2
    assert len(acks()) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "address",
    [
        "MAILER-DAEMON@mx.example.com",
        "postmaster@example.com",
        "no-reply@shop.example",
        "noreply@shop.example",
        "Do_Not_Reply+1234@bank.example",
        "donotreply@bank.example",
    ],
)
def test_robots_get_no_acknowledgement(channel, address):
    locmem.inbox["mail"] = [mail("robot", address), mail("person", "reply@example.com", minute=1)]
    poll_and_ingest(channel)
    assert Ticket.objects.count() == 2
    assert [ack.ticket.requester.email for ack in acks()] == ["reply@example.com"]


@pytest.mark.django_db
def test_at_most_a_few_acknowledgements_per_requester_and_hour(channel, settings):
    """Ann opens four tickets in one poll and one more later: three acks in the hour, Bo still gets his.
    An hour after them, Ann's next ticket is acknowledged again."""
    locmem.inbox["mail"] = [mail(f"a{n}", minute=n) for n in range(4)] + [mail("b0", "bo@example.com", name="Bo")]
    poll_and_ingest(channel)
    locmem.inbox["mail"] += [mail("a4", minute=10)]
    poll_and_ingest(channel)
    assert Ticket.objects.count() == 6
    assert sorted(ack.ticket.requester.email for ack in acks()) == ["ann@example.com"] * 3 + ["bo@example.com"]

    Message.objects.filter(meta__auto_ack=True).update(created_at=timezone.now() - timedelta(minutes=61))
    settings.AUTO_ACK_PER_SENDER_PER_HOUR = 1
    locmem.inbox["mail"] += [mail("a5", minute=20), mail("a6", minute=21)]
    poll_and_ingest(channel)
    recent = Message.objects.filter(meta__auto_ack=True, created_at__gt=timezone.now() - timedelta(minutes=5))
    assert [ack.ticket.messages.first().external_id for ack in recent] == ["a5"]


@pytest.mark.django_db
def test_the_hourly_limit_costs_one_query_per_batch(channel):
    def limit_queries(first, count):
        locmem.inbox.setdefault("mail", []).extend(
            mail(f"m{n}", f"p{n}@example.com", minute=n) for n in range(first, first + count)
        )
        with CaptureQueriesContext(connection) as queries:
            poll_and_ingest(channel)
        return [q["sql"] for q in queries if "auto_ack" in q["sql"] and "INSERT" not in q["sql"]]

    assert len(limit_queries(0, 2)) == len(limit_queries(10, 8)) == 1
    assert len(acks()) == 10


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_limit_query_is_served_by_its_index(channel):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = (
            Message.objects.filter(meta__auto_ack=True, created_at__gte=timezone.now())
            .values("id")
            .query.sql_with_params()
        )
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "message_auto_acks" in plan


@pytest.mark.django_db
def test_public_messages_keep_their_public_acknowledgement(channel, caplog):
    """A public message is never acknowledged by ``auto_ack``; with ``public_ack`` it gets that one (which
    locmem, having no public reply mode, refuses: the pipeline logs it)."""
    config = {"inbox": "mail", "auto_ack": AUTO_ACK, "triage": {"auto_ticket": "all"}}
    Channel.objects.filter(pk=channel.pk).update(config=config)
    locmem.inbox["mail"] = [mail("public", public=True)]
    poll_and_ingest(channel)
    assert not outbound().exists()

    Channel.objects.filter(pk=channel.pk).update(config={**config, "public_ack": "Ticket #{ticket} is open."})
    locmem.inbox["mail"] += [mail("public2", "bo@example.com", public=True), mail("private", "cy@example.com")]
    poll_and_ingest(channel)
    public = Message.objects.get(external_id="public2").ticket
    assert f"no acknowledgement for ticket {public.pk}: This channel has no reply mode 'public'" in caplog.text
    assert len(acks()) == 1
    assert acks()[0].ticket.requester.email == "cy@example.com"


@pytest.mark.django_db
def test_the_timeline_shows_the_acknowledgement_as_the_desks_reply(channel, agent_client):
    locmem.inbox["mail"] = [mail("a")]
    poll_and_ingest(channel)
    ticket = Ticket.objects.get()
    page = text_of(agent_client.get(detail_url(ticket)).content.decode())
    assert re.search(rf"Outbound System [^:]*:\d\d UTC Hello Ann, ticket #{ticket.pk} is open: Problem a\.", page)


# Languages and the expected first response ---------------------------------------------------------------------

MULTILINGUAL = {
    "body": "Ticket #{ticket} is open. {expected_response}",
    "subject": "Ticket #{ticket}",
    "languages": {
        "de": {
            "body": "Ticket #{ticket} ist eröffnet. {expected_response}",
            "expected_response": "Antwort bis {first_response_due}.",
        },
        "es": {"body": "El ticket #{ticket} está abierto. {expected_response}"},
    },
}


def acknowledged_in(channel, reads, *, due=None, **config):
    """The acknowledgement a requester who reads ``reads`` gets, their ticket due a first response at ``due``."""
    Channel.objects.filter(pk=channel.pk).update(config={"inbox": "mail", "auto_ack": MULTILINGUAL, **config})
    channel.refresh_from_db()
    locmem.inbox["mail"] = [mail("a")]
    poll_and_ingest(channel)
    ticket = Ticket.objects.get()
    Message.objects.filter(direction="outbound").delete()
    ticket.requester.language = reads
    ticket.requester.save()
    ticket.first_response_due_at = due
    ticket.save()
    return acknowledgements.render(channel.config, ticket)[1], ticket


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "config", "expected"),
    [
        ("de", {}, "Ticket #{n} ist eröffnet. Antwort bis 14:00 UTC on 5 Dec."),
        ("de-AT", {}, "Ticket #{n} ist eröffnet. Antwort bis 14:00 UTC on 5 Dec."),
        # A language without its own sentence uses the top one.
        ("es", {}, "El ticket #{n} está abierto. We aim to answer by 14:00 UTC on 5 Dec."),
        # No template for French: the channel's language, else the top (English) one.
        ("fr", {"language": "es"}, "El ticket #{n} está abierto. We aim to answer by 14:00 UTC on 5 Dec."),
        ("fr", {}, "Ticket #{n} is open. We aim to answer by 14:00 UTC on 5 Dec."),
        ("", {"time_zone": "Europe/Berlin"}, "Ticket #{n} is open. We aim to answer by 15:00 CET on 5 Dec."),
    ],
)
def test_the_template_of_the_requesters_language_with_the_expected_response(channel, language, config, expected):
    due = datetime(2026, 12, 5, 14, 0, tzinfo=UTC)
    body, ticket = acknowledged_in(channel, language, due=due, **config)
    assert body == expected.format(n=ticket.pk)


@pytest.mark.django_db
def test_without_a_due_time_the_sentence_is_left_out_and_the_text_still_reads_well(channel):
    body, ticket = acknowledged_in(channel, "de")
    assert body == f"Ticket #{ticket.pk} ist eröffnet."


def with_a_one_hour_policy_in_berlin(channel):
    berlin = Calendar.objects.create(name="Berlin 24/7", time_zone="Europe/Berlin", always_open=True)
    SlaPolicy.objects.create(name="Fast", first_response_minutes=60, resolution_minutes=480, calendar=berlin)
    Channel.objects.filter(pk=channel.pk).update(config={"inbox": "mail", "auto_ack": MULTILINGUAL})
    channel.refresh_from_db()


@pytest.mark.django_db
def test_the_acknowledgement_sent_names_the_due_time_the_sla_set_in_its_calendars_zone(channel, time_machine):
    """The SLA policy the new ticket matches sets its due time before the acknowledgement is written, and the
    time reads in the zone of the policy's calendar (its office hours), as the channel names none."""
    time_machine.move_to(datetime(2026, 12, 2, 9, 0, 30, tzinfo=UTC), tick=False)  # the mail is 30 s old
    with_a_one_hour_policy_in_berlin(channel)
    locmem.inbox["mail"] = [mail("a")]
    poll_and_ingest(channel)
    ticket = Ticket.objects.get()
    assert ticket.created_at == datetime(2026, 12, 2, 9, 0, tzinfo=UTC)  # the mail's own time
    assert ticket.sla_started_at == datetime(2026, 12, 2, 9, 0, 30, tzinfo=UTC)  # logged by the desk
    assert ticket.first_response_due_at == datetime(2026, 12, 2, 10, 0, 30, tzinfo=UTC)
    (ack,) = acks()
    assert ack.body == f"Ticket #{ticket.pk} is open. We aim to answer by 11:00 CET on 2 Dec."


@pytest.mark.django_db
def test_a_message_read_days_late_is_not_born_breached(channel, time_machine):
    """Mail read two days after it was written (a first import, a mailbox fetched after an outage): the clock
    runs from when the desk logged the ticket, so the scan finds nothing breached and escalates nothing."""
    time_machine.move_to(datetime(2026, 12, 4, 12, 0, tzinfo=UTC), tick=False)
    with_a_one_hour_policy_in_berlin(channel)
    locmem.inbox["mail"] = [mail("a")]
    poll_and_ingest(channel)
    ticket = Ticket.objects.get()
    assert ticket.created_at == datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    assert ticket.first_response_due_at == datetime(2026, 12, 4, 13, 0, tzinfo=UTC)
    assert sla.scan(timezone.now()).breaches == 0
    (ack,) = acks()
    assert ack.body == f"Ticket #{ticket.pk} is open. We aim to answer by 14:00 CET on 4 Dec."


@pytest.mark.parametrize(
    ("auto_ack", "error"),
    [
        ({"body": "#{ticket}", "languages": []}, "languages must be an object"),
        ({"body": "#{ticket}", "languages": {"de": {"body": "kein Ticket"}}}, "languages.de.body must contain"),
        ({"body": "#{ticket}", "languages": {"de": {"bdy": "#{ticket}"}}}, "languages.de must be an object"),
        ({"body": "#{ticket}", "expected_response": "by {when}"}, "unknown placeholder {when}"),
    ],
)
def test_bad_language_templates_are_refused(auto_ack, error):
    with pytest.raises(ConfigError, match=re.escape(error)):
        validate({"auto_ack": auto_ack})
    with pytest.raises(ConfigError, match="time zone name"):
        validate({"auto_ack": {"body": "#{ticket}"}, "time_zone": "Mars/Olympus"})
