"""Demo data for the embedded run: an admin, an agent, shared macros, Slack and X channels on the emulators."""

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand

from channels_ingest.channel_config import clean_channel_config
from channels_ingest.management.commands.channels import webhook_url
from channels_ingest.models import Channel
from tickets.models import Macro, Queue, Ticket
from tickets.roles import ADMINS_GROUP, AGENTS_GROUP

DEMO_USERS = [
    # username, password, first name, last name, group
    ("admin", "admin", "Ada", "Admin", ADMINS_GROUP),
    ("agent", "agent", "Alex", "Agent", AGENTS_GROUP),
]

#: Shared macros (canned responses) every agent finds in the composer.
DEMO_MACROS = [
    {
        "name": "Ask for details",
        "body": "Hi {requester_first_name}, thanks for reaching out about ticket #{ticket_number}.\n"
        "Could you tell us which device this happens on, and send a screenshot of the error?\n\n{agent_name}",
        "status": Ticket.Status.PENDING,
        "assignee_action": Macro.AssigneeAction.APPLIER,
    },
    {
        "name": "Solved, closing",
        "body": "Glad it works again, {requester_first_name}! I am resolving ticket #{ticket_number}; "
        "just reply here if the problem comes back.\n\n{agent_name}",
        "status": Ticket.Status.RESOLVED,
    },
]


class Command(BaseCommand):
    help = "Create demo users, shared macros, and Slack and X channels pointing at the local emulators (idempotent)."

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
        for macro in DEMO_MACROS:
            Macro.objects.get_or_create(name=macro["name"], owner=None, defaults=macro)

        config, secrets = clean_channel_config(
            "slack",
            {
                "bot_token": "xoxb-emulator",
                "signing_secret": "emulator-secret",
                "conversations": ["C0GENERAL"],
                "base_url": slack_base_url,
            },
        )
        channel, _ = Channel.objects.update_or_create(
            name="slack-it-help",
            defaults={"kind": "slack", "config": config, "secrets": secrets, "poll_interval_seconds": 60},
        )
        config, secrets = clean_channel_config(
            "x",
            {
                "bearer_token": "x-emulator-bearer",
                "base_url": x_base_url,
                "dm_poll_interval_seconds": 15,
                "triage": {"auto_ticket": "direct"},
                "monthly_budget_usd": 25,
            },
        )
        Channel.objects.update_or_create(
            name="x-ithelp", defaults={"kind": "x", "config": config, "secrets": secrets, "poll_interval_seconds": 10}
        )
        self.stdout.write(webhook_url(channel))
