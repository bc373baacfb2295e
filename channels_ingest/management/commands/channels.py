"""Manage channels without the UI: ``channels add|list|poll|requeue-failed``."""

import json
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Count, Sum
from django.urls import reverse
from django.utils import timezone

from channel_adapters.base import AdapterError, ConfigError
from channels_ingest import health, ingest, polling
from channels_ingest.channel_config import clean_channel_config
from channels_ingest.models import ApiUsage, Channel, InboundMessage
from channels_ingest.registry import can_poll
from channels_ingest.usage import month_start, monthly_budget, spent_this_month
from tickets.audit import record_change

#: Seconds between polls for a channel that can be polled, unless --poll-interval says otherwise.
DEFAULT_POLL_INTERVAL = 60


class Command(BaseCommand):
    help = "Add, list and poll channels; re-queue their failed inbound messages."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Connect a channel.")
        add.add_argument("kind", choices=sorted(settings.CHANNEL_ADAPTERS))
        add.add_argument("name")
        add.add_argument(
            "--config",
            default="{}",
            help="JSON: settings and credentials for the adapter; @FILE reads it from a file, - from standard input "
            "(so tokens stay off the command line).",
        )
        add.add_argument(
            "--poll-interval",
            type=int,
            default=None,
            help="Seconds between polls (default 60); 0 for webhooks only, as for a platform that cannot be polled.",
        )
        add.add_argument("--no-verify", action="store_true", help="Do not check the credentials now.")
        sub.add_parser("list", help="List channels with their health.")
        poll = sub.add_parser("poll", help="Poll a channel once, synchronously, and ingest what arrived.")
        poll.add_argument("name")
        poll.add_argument(
            "--force",
            action="store_true",
            help="Poll even a paused channel (e.g. over its budget): the calls are billed.",
        )
        requeue = sub.add_parser(
            "requeue-failed", help="Put a channel's failed inbound messages back in the queue, to be ingested again."
        )
        requeue.add_argument("name", nargs="?")
        requeue.add_argument(
            "--all", dest="every", action="store_true", help="Every channel's failed inbound messages."
        )

    def handle(self, *args, action, **options):
        getattr(self, f"handle_{action.replace('-', '_')}")(**options)

    def handle_add(self, *, kind, name, config, poll_interval, no_verify, **_):
        config = self._read_config(config)
        try:
            raw = json.loads(config)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--config is not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise CommandError("--config must be a JSON object.")
        try:
            clean_config, secrets = clean_channel_config(kind, raw)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        if Channel.objects.filter(name=name).exists():
            raise CommandError(f"A channel named {name!r} already exists.")
        pollable = can_poll(kind)
        if poll_interval and not pollable:
            raise CommandError(f"{kind} cannot be polled (it only pushes): leave --poll-interval out, or give 0.")
        if poll_interval is None:
            poll_interval = DEFAULT_POLL_INTERVAL if pollable else 0
        with transaction.atomic():
            channel = Channel.objects.create(
                kind=kind, name=name, config=clean_config, secrets=secrets, poll_interval_seconds=poll_interval
            )
            record_change(
                actor=None,
                actor_label="manage.py channels add",
                action="channel.create",
                target=channel,
                before=None,
                after=channel.audited(),
            )
            if not no_verify:
                try:
                    polling.verify_channel(channel)
                except AdapterError as exc:
                    transaction.set_rollback(True)
                    raise CommandError(f"Credentials check failed: {exc} (use --no-verify to add anyway)") from None
        self.stdout.write(self.style.SUCCESS(f"Added {kind} channel {name!r} (id {channel.pk})."))
        self.stdout.write(f"Webhook URL: {webhook_url(channel)}")
        self.stdout.write(f"Credentials stored encrypted: {channel.masked_secrets()}")

    def _read_config(self, config: str) -> str:
        if config == "-":
            return sys.stdin.read()
        if config.startswith("@"):
            try:
                return Path(config[1:]).read_text()
            except OSError as exc:
                raise CommandError(f"--config {config}: {exc.strerror}") from None
        return config

    def handle_list(self, **_):
        channels = list(Channel.objects.all())
        if not channels:
            self.stdout.write("No channels.")
            return
        failed = dict(
            InboundMessage.objects.filter(status=InboundMessage.Status.FAILED)
            .values_list("channel_id")
            .annotate(n=Count("id"))
        )
        spent = dict(ApiUsage.objects.filter(month=month_start()).values_list("channel_id").annotate(total=Sum("cost")))
        now = timezone.now()
        activity = InboundMessage.objects.activity(now)
        for channel in channels:
            state = "enabled" if channel.enabled else "disabled"
            # The Channels page's words and reasons (healthy, degraded, broken, disabled).
            assessed = health.assess(
                channel, activity.get(channel.pk, health.Activity()), now, polls=can_poll(channel.kind)
            )
            last_poll = channel.last_poll_at.isoformat(timespec="seconds") if channel.last_poll_at else "never"
            self.stdout.write(
                f"{channel.name}\t{channel.kind}\t{state}\t{assessed.state}\tlast poll: {last_poll} "
                f"(stored {channel.last_poll_stored})\tfailed inbound: {failed.get(channel.pk, 0)}"
            )
            for reason in assessed.reasons:
                self.stdout.write(f"  {reason}")
            if channel.last_error:
                self.stdout.write(f"  last error: {channel.last_error}")
            if channel.paused_reason:
                self.stdout.write(f"  PAUSED: {channel.paused_reason}")
            budget = monthly_budget(channel)
            spend = spent.get(channel.pk)
            if spend is not None or budget is not None:
                limit = f" of ${budget:.2f} budget" if budget is not None else ""
                self.stdout.write(f"  estimated spend this month: ${spend or 0:.2f}{limit}")
            self.stdout.write(f"  webhook: {webhook_url(channel)}")

    def handle_poll(self, *, name, force, **_):
        channel = Channel.objects.filter(name=name).first()
        if channel is None:
            raise CommandError(f"No channel named {name!r}.")
        outcome = polling.poll_channel(channel.pk, force=force)
        if outcome.paused:
            raise CommandError(
                f"{name} is paused: {outcome.paused} Spent so far this month: ${spent_this_month(channel):.2f}. "
                "Pass --force to poll it anyway; the calls it makes are billed."
            )
        if not outcome.polled:
            raise CommandError(f"{name} is being polled by another worker right now; try again shortly.")
        ingested = ingest.ingest_channel(channel.pk)
        self.stdout.write(f"Stored {outcome.stored} new messages from {name} ({ingested} ingested into tickets).")
        channel.refresh_from_db(fields=["paused_reason"])
        if force and channel.paused_reason:
            self.stdout.write(
                self.style.WARNING(
                    f"{name} was polled although paused (--force); spent this month: ${spent_this_month(channel):.2f}."
                )
            )
        if outcome.error:
            raise CommandError(f"Poll stopped early: {outcome.error}")

    def handle_requeue_failed(self, *, name, every, **_):
        if bool(name) == every:
            raise CommandError("Name a channel, or use --all for every channel.")
        channels = list(Channel.objects.all() if every else Channel.objects.filter(name=name))
        if not channels and not every:
            raise CommandError(f"No channel named {name!r}.")
        for channel in channels:
            count = ingest.requeue_failed(channel)
            self.stdout.write(f"Re-queued {count} failed inbound messages of {channel.name}.")


def webhook_url(channel):
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("channels_ingest:webhook", args=[channel.public_id])
