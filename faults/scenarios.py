"""The scenarios, and how each one runs against the live stack.

Every scenario follows one script: empty tables, a fresh emulator and channel; the platform starts sending;
agents reply (through the domain, ``tickets.replies.reply_to_ticket``) while the fault strikes; the fault ends;
the run waits until every message is ingested and every reply has settled (sent or failed), presses Retry
(``channels_ingest.delivery.retry_delivery``) on the failed ones, waits again, and counts.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import zip_longest

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError

from channels_ingest import delivery
from channels_ingest.delivery import retry_delivery
from channels_ingest.models import Channel, InboundMessage
from channels_ingest.queueing import TaskName
from tickets.models import Attachment, Message, Ticket
from tickets.replies import ReplyError, reply_to_ticket

from .load import SlackLoad, XLoad
from .mail_load import MailLoad
from .meta_load import MetaLoad
from .options import Options
from .processes import Beat, Supervisor, Web, Worker
from .report import Result
from .services import Postgres, Redis

DB_DOWN = (OperationalError, InterfaceError)
Load = SlackLoad | XLoad | MetaLoad | MailLoad
#: What every warning that a reply may have arrived says (delivery.UNCONFIRMED_ERROR, delivery.STALLED_SEND_ERROR).
UNCONFIRMED_WARNING = "it may or may not have arrived"
#: A reply the platform holds is sent, whatever it reported since (Messenger's and WhatsApp's receipts).
SENT_STATUSES = (Message.DeliveryStatus.SENT, Message.DeliveryStatus.DELIVERED, Message.DeliveryStatus.READ)
STORM_RATE = 0.2
#: How much later than the client's timeout a storm's slow answer comes.
SLOW_PAST_TIMEOUT = 1.0
STORM_RETRY_AFTER = 2
#: The share of the messages stored before a mid-ingest fault strikes.
FAULT_AT = 0.25
REPLY_INTERVAL = 0.1
FAST_FORWARD_EVERY = 5.0
#: Seconds without anything stored or ingested (and nothing pending) after which what is missing will not come.
STALL = 45.0
#: A reply whose heartbeat is this much older than the client timeout has no live worker any more.
SENDING_MARGIN = timedelta(seconds=5)


@dataclass
class Stack:
    """The running helpdesk and its services, shared by the scenarios of one run."""

    redis: Redis
    postgres: Postgres
    worker: Worker
    beat: Beat
    web: Web
    options: Options

    def ensure_running(self) -> None:
        """Whatever a scenario left stopped (or failed to restart) is started again."""
        if self.redis.process is None or self.redis.process.poll() is not None:
            self.redis.start()
        if not self.postgres._started:
            self.postgres.start()
        for process in (self.worker, self.beat, self.web):
            if not process.alive:
                process.start()
                process.wait_ready()


@dataclass
class Run:
    """One scenario's moving parts and clock."""

    stack: Stack
    scenario: Scenario
    load: Load
    channels: list[Channel]
    notes: list[str] = field(default_factory=list)
    reply_texts: list[str] = field(default_factory=list)
    #: Replies the agent retried after the warning that the platform did not confirm them, on a channel that
    #: cannot look whether they arrived: reply id -> how many times.
    warned_retries: Counter = field(default_factory=Counter)
    replies_made: threading.Event = field(default_factory=threading.Event)

    def note(self, text: str) -> None:
        self.notes.append(text)

    @property
    def options(self) -> Options:
        return self.stack.options


# Faults ------------------------------------------------------------------------------------------------------


def kill_worker(run: Run) -> None:
    # Replies take a second to post (within the client's timeout), so the kill lands mid-send.
    run.load.emulator.fault(run.load.send_method, latency=1.0)
    sending = Message.DeliveryStatus.SENDING
    mid_send = _wait(lambda: _db(lambda: _replies(run).filter(delivery_status=sending).exists(), False), 60, 0.05)
    run.stack.worker.kill()
    run.note(
        f"worker killed (SIGKILL to its process group) {'with a reply mid-send' if mid_send else 'while no reply was being sent'}"
    )
    time.sleep(1)
    run.stack.worker.start().wait_ready()
    run.load.emulator.fault(run.load.send_method, latency=0)


def kill_beat(run: Run) -> None:
    run.stack.beat.kill()
    run.note("beat killed (SIGKILL)")
    time.sleep(2)
    run.stack.beat.start().wait_ready()


def kill_web(run: Run) -> None:
    run.stack.web.kill()
    run.note("web killed (SIGKILL to gunicorn and its workers)")
    time.sleep(1)
    run.stack.web.start().wait_ready()


def restart_redis(run: Run) -> None:
    run.stack.redis.stop()
    run.note(f"redis stopped for {run.options.outage_seconds:.0f}s")
    time.sleep(run.options.outage_seconds)
    run.stack.redis.start()


def crash_postgres(run: Run) -> None:
    run.stack.postgres.crash()
    run.note(f"postgres stopped (immediate) for {run.options.outage_seconds:.0f}s")
    time.sleep(run.options.outage_seconds)
    run.stack.postgres.start()


def storm(kind: str) -> Callable[[Run], None]:
    def fault(run: Run) -> None:
        stats = run.load.emulator.start_storm(
            rate=STORM_RATE,
            kinds=[kind],
            seed=run.options.seed,
            keys=run.load.storm_keys(),
            retry_after=STORM_RETRY_AFTER,
            slow_seconds=run.options.client_timeout + SLOW_PAST_TIMEOUT,
        )
        run.note(
            f"{kind} storm on {stats['rate']:.0%} of {run.load.platform} calls for {run.options.storm_seconds:.0f}s"
        )
        time.sleep(run.options.storm_seconds)
        # Every reply goes out into the storm at least once, whatever the length of the storm.
        run.replies_made.wait(run.options.ingest_timeout)
        _wait(
            lambda: _db(lambda: not _replies(run).filter(delivery_attempts=0).exists(), False),
            run.options.settle_timeout,
        )
        stats = run.load.emulator.stop_storm()
        run.note(f"storm over: {stats['hits'].get(kind, 0)} of {stats['calls']} calls struck")

    return fault


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    load: type[Load]
    fault: Callable[[Run], None]
    webhook: bool = False
    poll: bool = True
    #: "mid": once FAULT_AT of the messages are stored and replies are going out; "backlog": as soon as stored rows
    #: wait to be ingested (an ingest is running); "start": before the first message.
    strikes: str = "mid"


SCENARIOS = [
    Scenario("worker-kill", "kill -9 of the Celery worker mid-ingest (Slack webhooks and polling)", SlackLoad,
             kill_worker, webhook=True),
    Scenario("beat-kill", "kill -9 of beat mid-ingest (Slack polling, which beat drives)", SlackLoad, kill_beat),
    Scenario("redis-restart", "Redis (broker and cache) stopped and started mid-ingest (Slack webhooks and polling)",
             SlackLoad, restart_redis, webhook=True, strikes="backlog"),
    Scenario("pg-restart", "PostgreSQL stopped (immediate) and started mid-ingest (Slack webhooks and polling)",
             SlackLoad, crash_postgres, webhook=True),
    Scenario("web-kill", "kill -9 of gunicorn during a Slack webhook burst (no polling: Slack's retries only)",
             SlackLoad, kill_web, webhook=True, poll=False),
] + [
    Scenario(f"{platform}-storm-{kind}", f"{what} storm from {name}: {way} in, replies out", load, storm(kind),
             strikes="start")
    for platform, name, load, way in (
        ("slack", "Slack", SlackLoad, "polling"),
        ("x", "X", XLoad, "polling"),
        ("meta", "Meta (Facebook, Instagram, WhatsApp)", MetaLoad, "webhooks and polling"),
        ("email", "the mail server (IMAP and SMTP)", MailLoad, "IMAP polling"),
    )
    for kind, what in (("5xx", "20 % 5xx"), ("429", "20 % 429 with Retry-After"),
                       ("slow", "20 % answered after the client timeout"), ("reset", "20 % connection resets"))
]  # fmt: skip
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


# Running ----------------------------------------------------------------------------------------------------


def run_scenario(stack: Stack, scenario: Scenario) -> Result:
    result = Result(scenario=scenario.name)
    started = time.monotonic()
    load = None
    try:
        _prepare(stack, result)
        load = scenario.load(
            stack.options.messages,
            webhook=scenario.webhook,
            poll=scenario.poll,
            web_url=stack.web.url,
            client_timeout=stack.options.client_timeout,
        )
        run = Run(stack, scenario, load, load.create_channels())
        run.notes = result.notes
        _play(run, result)
    except Exception as exc:  # noqa: BLE001 - a broken scenario is reported, and the others still run
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        if load is not None:
            load.close()
        result.seconds = time.monotonic() - started
    return result


def _prepare(stack: Stack, result: Result) -> None:
    """Every process up and answering, the state empty. A worker that no longer answers a ping (seen after its
    broker restarted) is said so, and replaced."""
    for attempt in (1, 2):
        try:
            stack.ensure_running()
            _reset(stack)
            if stack.worker.answers():
                return
        except (RedisConnectionError, *DB_DOWN):
            if attempt == 2:
                raise
        result.notes.append("the worker left by the previous scenario did not answer a ping; it was restarted")
        connection.close()
        stack.worker.kill()
        stack.worker.start().wait_ready()


def _reset(stack: Stack) -> None:
    """Empty tables, cache and queue; once more if a connection left over from a restarted Redis drops."""
    for attempt in (1, 2):
        try:
            reset_state()
            stack.worker.celery_app.control.purge()  # tasks left for the last scenario's channel
            return
        except (RedisConnectionError, *DB_DOWN):
            if attempt == 2:
                raise
            connection.close()
            time.sleep(1)


def reset_state() -> None:
    tables = [
        model._meta.db_table
        for label in ("tickets", "channels_ingest")
        for model in apps.get_app_config(label).get_models()
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
    cache.clear()


def _play(run: Run, result: Result) -> None:
    stack = run.stack
    with Supervisor([stack.worker, stack.beat, stack.web], run.note):
        _play_supervised(run, result)
    _count(run, run.load.expected_ids(), result)
    result.notes = run.notes


def _play_supervised(run: Run, result: Result) -> None:
    options = run.options
    feeder = _thread(run.load.feed, lambda: _db(lambda: _stored_ids(run.channels)))
    replier = _thread(_make_replies, run)
    if run.scenario.strikes == "backlog":
        _wait(lambda: (_db(lambda: _pending(run.channels)) or 0) > 0, options.ingest_timeout, 0.02)
    elif run.scenario.strikes == "mid":
        # Mid-ingest, and with replies already on their way out (as many more follow during the fault).
        _wait(
            lambda: (
                (_db(lambda: _stored(run.channels)) or 0) >= options.messages * FAULT_AT
                and len(run.reply_texts) >= options.replies // 3
            ),
            options.ingest_timeout,
        )
    run.scenario.fault(run)
    fault_ended = time.monotonic()
    feeder.join()
    replier.join()
    expected = run.load.expected_ids()
    ingested_at = _wait_for_ingest(run, len(expected))
    settled_at = _wait_for_replies(run)
    if ingested_at is not None and settled_at is not None:
        result.recovery_seconds = max(ingested_at, settled_at, fault_ended) - fault_ended
    failed = _db(lambda: list(_replies(run).filter(delivery_status=Message.DeliveryStatus.FAILED)), [])
    for message in failed:
        run.note(f"reply {message.pk} failed visibly ({message.delivery_error[:120]}); pressing Retry")
        if _warned_unconfirmed(message):
            run.warned_retries[message.pk] += 1
        result.retried += int(retry_delivery(message))
    if failed:
        _wait_for_replies(run)


def _thread(target, *args) -> threading.Thread:
    def closing():
        try:
            target(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=closing, daemon=True)
    thread.start()
    return thread


def _db(query, default=None):
    """A query that tolerates the database being down (the PostgreSQL scenario): ``default`` then."""
    try:
        return query()
    except DB_DOWN:
        connection.close()
        return default


def _wait(condition, timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


def _warned_unconfirmed(message: Message) -> bool:
    """Whether the agent sees that this reply may have arrived, on a channel that cannot look (WhatsApp): a Retry
    then sends it again knowingly, so a second copy is the warned case, not a silent duplicate."""
    return UNCONFIRMED_WARNING in message.delivery_error and not message.thread.channel.adapter().finds_sent


def _stored(channels) -> int:
    return InboundMessage.objects.filter(channel__in=channels).count()


def _stored_ids(channels) -> set[str]:
    return set(InboundMessage.objects.filter(channel__in=channels).values_list("external_id", flat=True))


def _pending(channels) -> int:
    return InboundMessage.objects.filter(channel__in=channels, status=InboundMessage.Status.PENDING).count()


def _inbound(channels):
    return Message.objects.filter(thread__channel__in=channels, direction=Message.Direction.INBOUND)


def _replies(run: Run):
    return Message.objects.filter(direction=Message.Direction.OUTBOUND, body__in=run.reply_texts)


def _make_replies(run: Run) -> None:
    """Agents answer the first tickets while the fault strikes: one reply every REPLY_INTERVAL."""
    try:
        _answer_tickets(run)
    finally:
        run.replies_made.set()


def _answer_tickets(run: Run) -> None:
    count = run.options.replies
    agent = _db(lambda: get_user_model().objects.get_or_create(username="faults-agent")[0])
    tickets: list[int] = []
    deadline = time.monotonic() + run.options.ingest_timeout
    while len(tickets) < count and time.monotonic() < deadline:
        tickets = _db(lambda: _first_tickets(run.channels, count), [])
        time.sleep(0.25)
    token = uuid.uuid4().hex[:6]
    for n, (ticket_id, mode) in enumerate(zip(tickets, run.load.reply_modes(len(tickets)), strict=True)):
        text = f"Reply {n} from the {run.scenario.name} run {token}"
        if _reply(ticket_id, agent, text, mode, deadline):
            run.reply_texts.append(text)
        time.sleep(REPLY_INTERVAL)


def _first_tickets(channels, count: int) -> list[int]:
    """The first ``count`` tickets, taken from each channel in turn, so that every channel's replies go out."""
    per_channel = [
        list(Ticket.objects.filter(channel=channel).order_by("id").values_list("id", flat=True)[:count])
        for channel in channels
    ]
    interleaved = [ticket for round_ in zip_longest(*per_channel) for ticket in round_ if ticket is not None]
    return interleaved[:count]


def _reply(ticket_id, agent, text, mode, deadline) -> bool:
    while time.monotonic() < deadline:
        try:
            ticket = Ticket.objects.get(pk=ticket_id)
            try:
                reply_to_ticket(ticket=ticket, author=agent, body=text, mode=mode)
            except ReplyError:
                reply_to_ticket(ticket=ticket, author=agent, body=text)  # a DM conversation takes only DMs
            return True
        except DB_DOWN:
            connection.close()
            time.sleep(0.5)
        if _db(lambda: Message.objects.filter(body=text).exists()):  # committed before the error
            return True
    return False


def _wait_for_ingest(run: Run, expected: int) -> float | None:
    """When every sent message became a ticket message; None if some never did (failed, skipped, lost), which is
    taken as certain once nothing is pending and nothing was stored or ingested for STALL seconds."""
    deadline = time.monotonic() + run.options.ingest_timeout
    last, still_since = None, time.monotonic()
    while time.monotonic() < deadline:
        ingested = _db(lambda: _inbound(run.channels).count())
        if ingested is not None and ingested >= expected:
            return time.monotonic()
        progress = (ingested, _db(lambda: _stored(run.channels)))
        if progress != last:
            last, still_since = progress, time.monotonic()
        elif time.monotonic() - still_since > STALL and _db(lambda: _pending(run.channels)) == 0:
            return None
        time.sleep(0.5)
    return None


def _wait_for_replies(run: Run) -> float | None:
    """When no reply is queued or sending any more; None if some still are after the settle timeout."""
    in_flight = (Message.DeliveryStatus.QUEUED, Message.DeliveryStatus.SENDING)
    deadline = time.monotonic() + run.options.settle_timeout
    fast_forwarded = 0.0
    while time.monotonic() < deadline:
        if _db(lambda: not _replies(run).filter(delivery_status__in=in_flight).exists(), False):
            return time.monotonic()
        if run.options.fast_forward and time.monotonic() - fast_forwarded > FAST_FORWARD_EVERY:
            fast_forwarded = time.monotonic()
            _db(lambda: _fast_forward(run))
        time.sleep(0.5)
    return None


def _fast_forward(run: Run) -> None:
    """Play the sweep's delivery rules as if their timers had run out, while no delivery is running: a reply
    stuck ``sending`` (its worker died) is taken back once its heartbeat is a client timeout old rather than after
    SEND_LEASE, and a queued reply whose task was lost is queued again now rather than after 2 minutes. Only for
    short runs (``--fast-forward``)."""
    active = run.stack.worker.celery_app.control.inspect(timeout=1).active()
    if active is None or any(task["name"] == TaskName.DELIVER for tasks in active.values() for task in tasks):
        return
    now = timezone.now()
    sending_for_certain = timedelta(seconds=run.options.client_timeout) + SENDING_MARGIN
    taken_back = delivery.recover_stalled_sends(now + delivery.SEND_LEASE - sending_for_certain)
    requeued = delivery.redeliver_overdue(now + delivery.LOST_RETRY)
    if taken_back or requeued:
        run.note(f"fast-forward: {taken_back} replies stuck sending taken back, {requeued} queued again")


def _count(run: Run, expected: set[str], result: Result) -> None:
    rows = Counter(InboundMessage.objects.filter(channel__in=run.channels).values_list("external_id", flat=True))
    made = Counter(_inbound(run.channels).values_list("external_id", flat=True))
    result.sent = len(expected)
    result.stored = len(expected & rows.keys())
    result.ingested = len(expected & made.keys())
    result.duplicated = sum(n - 1 for n in rows.values() if n > 1) + sum(n - 1 for n in made.values() if n > 1)
    result.lost = len(expected - made.keys())
    failed_rows = InboundMessage.objects.filter(channel__in=run.channels, status=InboundMessage.Status.FAILED)
    result.failed_rows = failed_rows.count()
    if result.failed_rows:
        errors = Counter(failed_rows.values_list("error", flat=True))
        for error, n in errors.most_common(3):
            run.note(f"{n} inbound rows failed: {error.splitlines()[0][:160]}")
    files = Counter(Attachment.objects.filter(message__in=_inbound(run.channels)).values_list("status", flat=True))
    if files:  # downloads retry on their own schedule, after ingestion: noted, not counted
        run.note("files that came in: " + ", ".join(f"{n} {status}" for status, n in sorted(files.items())))

    copies = run.load.reply_copies()
    replies = list(_replies(run))
    result.replies = len(run.reply_texts)
    for message in replies:
        on_platform = copies[message.body]
        extra = max(0, on_platform - 1)
        warned = min(extra, run.warned_retries[message.pk])
        result.reply_copies += extra - warned
        if message.delivery_status in SENT_STATUSES:
            if on_platform == 1:
                result.replies_once += 1
            elif on_platform == 0:
                result.replies_lost += 1
            elif extra == warned:
                result.replies_warned += 1
        else:
            result.replies_unsettled += 1
        if on_platform > 1:
            run.note(
                f"reply {message.pk} is on {run.load.platform} {on_platform} times (status {message.delivery_status})"
            )
    if len(replies) != len(run.reply_texts):
        run.note(f"{len(run.reply_texts) - len(replies)} replies were not stored")
