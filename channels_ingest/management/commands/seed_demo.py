"""Demo data for the embedded run: an admin, an agent, and Slack and X channels wired to the emulators."""

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand

from channels_ingest.adapters.slack import SlackAdapter
from channels_ingest.adapters.x import XAdapter
from channels_ingest.management.commands.channels import webhook_url
from channels_ingest.models import Channel
from tickets.models import Queue
from tickets.roles import ADMINS_GROUP, AGENTS_GROUP

DEMO_USERS = [
    # username, password, first name, last name, group
    ("admin", "admin", "Ada", "Admin", ADMINS_GROUP),
    ("agent", "agent", "Alex", "Agent", AGENTS_GROUP),
]


class Command(BaseCommand):
    help = "Create demo users and Slack and X channels pointing at the local emulators (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--slack-base-url", default="http://127.0.0.1:8765/api/")
        parser.add_argument("--x-base-url", default="http://127.0.0.1:8767")

    def handle(self, *args, slack_base_url, x_base_url, **options):
        for username, password, first, last, group in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username, defaults={"first_name": first, "last_name": last, "is_staff": group == ADMINS_GROUP}
            )
            if created:
                user.set_password(password)
                user.save()
            user.groups.add(Group.objects.get_or_create(name=group)[0])
        Queue.objects.get_or_create(name="Service desk")

        config, secrets = SlackAdapter.split_config(
            {
                "bot_token": "xoxb-emulator",
                "signing_secret": "emulator-secret",
                "conversations": ["C0GENERAL"],
                "base_url": slack_base_url,
            }
        )
        channel, _ = Channel.objects.update_or_create(
            name="slack-it-help",
            defaults={"kind": "slack", "config": config, "secrets": secrets, "poll_interval_seconds": 60},
        )
        config, secrets = XAdapter.split_config(
            {
                "bearer_token": "x-emulator-bearer",
                "base_url": x_base_url,
                "dm_poll_interval_seconds": 15,
                "triage": {"auto_ticket": "direct"},
                "monthly_budget_usd": 25,
            }
        )
        Channel.objects.update_or_create(
            name="x-ithelp", defaults={"kind": "x", "config": config, "secrets": secrets, "poll_interval_seconds": 10}
        )
        self.stdout.write(webhook_url(channel))
