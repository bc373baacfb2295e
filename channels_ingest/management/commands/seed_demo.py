"""Demo data for the embedded run: an admin, agents, an employee, shared macros, ITIL categories, services and
the priority matrix, two teams and five routing rules, two calendars and three SLA policies, the employee portal's
channel, and Slack, X, Facebook, Instagram, WhatsApp and email channels on the local emulators."""

import json
from datetime import time

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand

from channels_ingest.channel_config import clean_channel_config
from channels_ingest.management.commands.channels import webhook_url
from channels_ingest.models import Channel
from tickets.itil import DEFAULT_MATRIX
from tickets.models import (
    Calendar,
    Category,
    Macro,
    PriorityMatrix,
    Queue,
    RoutingRule,
    Service,
    SlaPolicy,
    Team,
    Ticket,
)
from tickets.roles import ADMINS_GROUP, AGENTS_GROUP

DEMO_USERS = [
    # username, password, first name, last name, group
    ("admin", "admin", "Ada", "Admin", ADMINS_GROUP),
    ("agent", "agent", "Alex", "Agent", AGENTS_GROUP),
    ("sam", "sam", "Sam", "Second", AGENTS_GROUP),
]

#: Teams: (name, automatic assignment, member usernames).
DEMO_TEAMS = [
    ("Network", Team.Assignment.ROUND_ROBIN, ["agent", "sam"]),
    ("Access", Team.Assignment.LEAST_LOADED, ["admin", "agent"]),
]

#: Routing rules, in order (``tickets.routing``): each lets the next ones apply too, but the last.
DEMO_RULES = [
    {"name": "German speakers", "language": "de", "add_tags": "german", "continue_matching": True},
    {
        "name": "Network issues",
        "keywords": "vpn, wi-fi, wifi, network, internet, ethernet",
        "set_team": "Network",
        "set_priority": Ticket.Priority.HIGH,
        "add_tags": "network",
        "continue_matching": True,
    },
    {
        "name": "Access and passwords",
        "keywords": "password, locked, access, login, mfa, 2fa",
        "set_team": "Access",
        "set_kind": Ticket.Kind.SERVICE_REQUEST,
        "add_tags": "access",
        "continue_matching": True,
    },
    {"name": "VIP requesters", "vip": "yes", "raise_priority": True, "add_tags": "vip", "continue_matching": True},
    {
        "name": "After hours",
        "time_from": time(18),
        "time_until": time(8),
        "time_zone": "Europe/Berlin",
        "add_tags": "after-hours",
    },
]

#: The acknowledgement on Slack (in the message's thread), in English, German and Spanish.
SLACK_ACK = {
    "body": "Thanks {name}: this is ticket #{ticket}. {expected_response}",
    "languages": {
        "de": {
            "body": "Danke {name}: das ist Ticket #{ticket}. {expected_response}",
            "expected_response": "Wir antworten bis {first_response_due}.",
        },
        "es": {
            "body": "Gracias {name}: este es el ticket #{ticket}. {expected_response}",
            "expected_response": "Responderemos antes de {first_response_due}.",
        },
    },
}

#: An employee of the demo (also on the Slack emulator, with this address): signs in to the portal by an emailed
#: link, which the embedded run prints to its console (Django's console email backend). No password.
DEMO_EMPLOYEE = {"username": "maya", "email": "maya@example.com", "first_name": "Maya", "last_name": "Patel"}

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


#: What tickets are about, and the services they affect (ITIL; admins edit both lists in the console).
DEMO_CATEGORIES = ["Hardware", "Software", "Access", "Network", "Accounts"]
DEMO_SERVICES = ["VPN", "Email", "Wi-Fi", "Payroll", "Laptops"]


#: The Meta emulator's demo accounts (``bin/run-embedded`` creates them there with these ids and secrets).
META_DEMO = {
    "page_id": "110000000000001",
    "ig_user_id": "17841400000000001",
    "phone_number_id": "105000000000001",
    "waba_id": "102000000000001",
    "page_token": "meta-demo-page-token",
    "whatsapp_token": "meta-demo-whatsapp-token",
    "app_secret": "meta-demo-app-secret",
    "verify_token": "meta-demo-verify-token",
}


#: The mail emulator's demo mailbox (``bin/run-embedded`` starts ``python -m emulators.mail`` with it).
MAIL_DEMO = {"address": "it-help@example.com", "password": "mail-demo-password"}


class Command(BaseCommand):
    help = "Create demo users, shared macros, the portal channel, and channels on the local emulators (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--slack-base-url", default="http://127.0.0.1:8765/api/")
        parser.add_argument("--x-base-url", default="http://127.0.0.1:8767")
        parser.add_argument("--meta-base-url", default="http://127.0.0.1:8769/v25.0")
        parser.add_argument("--mail-host", default="127.0.0.1")
        parser.add_argument("--imap-port", type=int, default=8143)
        parser.add_argument("--smtp-port", type=int, default=8025)

    def handle(self, *args, slack_base_url, x_base_url, meta_base_url, mail_host, imap_port, smtp_port, **options):
        for username, password, first, last, group in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username, defaults={"first_name": first, "last_name": last, "is_staff": group == ADMINS_GROUP}
            )
            if created:
                user.set_password(password)
                user.save()
            user.groups.add(Group.objects.get_or_create(name=group)[0])
        employee, created = User.objects.get_or_create(username=DEMO_EMPLOYEE["username"], defaults=DEMO_EMPLOYEE)
        if created:
            employee.set_unusable_password()
            employee.save()
        # The portal takes nothing from outside: no polling, no webhook.
        Channel.objects.update_or_create(name="portal", defaults={"kind": "portal", "poll_interval_seconds": 0})
        Queue.objects.get_or_create(name="Service desk")
        self._itil_lists()
        for macro in DEMO_MACROS:
            Macro.objects.get_or_create(name=macro["name"], owner=None, defaults=macro)
        self._routing()
        self._sla()

        config, secrets = clean_channel_config(
            "slack",
            {
                "bot_token": "xoxb-emulator",
                "signing_secret": "emulator-secret",
                "conversations": ["C0GENERAL"],
                "base_url": slack_base_url,
                "auto_ack": SLACK_ACK,
                "time_zone": "Europe/Berlin",
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
        meta = self._meta_channels(meta_base_url)
        self._mail_channel(mail_host, imap_port, smtp_port)
        # Last lines, read by bin/run-embedded: where each platform pushes, and the Meta accounts to create.
        for name, pushed in [("slack-it-help", channel), *meta]:
            self.stdout.write(f"webhook {name} {webhook_url(pushed)}")
        self.stdout.write(f"meta-demo {json.dumps(META_DEMO)}")
        self.stdout.write(f"mail-demo {json.dumps(MAIL_DEMO)}")

    def _routing(self):
        """Two teams of the demo agents, and five routing rules (left as they are once created). Every agent is
        available until they say otherwise on My profile."""
        teams = {}
        for name, assignment, usernames in DEMO_TEAMS:
            team, created = Team.objects.get_or_create(name=name, defaults={"assignment": assignment})
            if created:
                team.members.set(User.objects.filter(username__in=usernames))
            teams[name] = team
        for position, fields in enumerate(DEMO_RULES, start=1):
            team = fields.get("set_team")
            values = {**fields, "position": position, **({"set_team": teams[team]} if team else {})}
            RoutingRule.objects.get_or_create(name=fields["name"], defaults=values)

    def _sla(self):
        """Two calendars and three SLA policies (VIP incidents, urgent and high incidents, everything else)."""
        office, _ = Calendar.objects.get_or_create(
            name="Office hours Berlin",
            defaults={
                "time_zone": "Europe/Berlin",
                "hours": {str(day): [["08:00", "18:00"]] for day in range(5)},
                "holiday_country": "DE",
                "holiday_subdivision": "BE",
            },
        )
        always, _ = Calendar.objects.get_or_create(name="24/7", defaults={"always_open": True})
        incident = Ticket.Kind.INCIDENT
        for name, position, defaults in [
            ("VIP incidents", 1, {"kind": incident, "vip_only": True, "calendar": always, "raise_priority": True}),
            ("Urgent & High incidents", 2, {"kind": incident, "priorities": [3, 4], "calendar": office}),
            ("Default", 3, {"calendar": office}),
        ]:
            targets = {"VIP incidents": (30, 240), "Urgent & High incidents": (60, 480), "Default": (480, 1800)}
            first, resolution = targets[name]
            SlaPolicy.objects.get_or_create(
                name=name,
                defaults={
                    "position": position,
                    "first_response_minutes": first,
                    "resolution_minutes": resolution,
                    **defaults,
                },
            )

    def _itil_lists(self):
        """The ITIL lists agents choose from, and the ITIL 3x3 priority matrix (kept if an admin changed it)."""
        for name in DEMO_CATEGORIES:
            Category.objects.get_or_create(name=name)
        for name in DEMO_SERVICES:
            Service.objects.get_or_create(name=name)
        for (impact, urgency), priority in DEFAULT_MATRIX.items():
            PriorityMatrix.objects.get_or_create(impact=impact, urgency=urgency, defaults={"priority": priority})

    def _mail_channel(self, host, imap_port, smtp_port):
        """The IT mailbox on the mail emulator (``emulators.mail``): polled every 30 s, and at once when IDLE says
        mail arrived (``bin/run-embedded`` runs ``watch_mailboxes``); new tickets get an acknowledgement."""
        config, secrets = clean_channel_config(
            "email",
            {
                "address": MAIL_DEMO["address"],
                "desk_name": "IT Help Desk",
                "imap_host": host,
                "imap_port": imap_port,
                "imap_security": "none",
                "smtp_port": smtp_port,
                "smtp_security": "none",
                "username": MAIL_DEMO["address"],
                "password": MAIL_DEMO["password"],
                "after_store": "move",
                "move_to": "Processed",
                "idle": True,
                "auto_ack": {
                    "body": "Hello {name},\n\nThanks for writing to IT. Your request is ticket #{ticket}; "
                    "an agent will answer here. {expected_response}\n\nIT Help Desk"
                },
            },
        )
        Channel.objects.update_or_create(
            name="email-it-help",
            defaults={"kind": "email", "config": config, "secrets": secrets, "poll_interval_seconds": 30},
        )

    def _meta_channels(self, base_url):
        """Facebook and Instagram poll every 5 minutes as a backstop to their webhooks; WhatsApp only pushes."""
        demo, common = META_DEMO, {"base_url": base_url, "app_secret": META_DEMO["app_secret"]}
        page = {"page_id": demo["page_id"], "page_access_token": demo["page_token"], "human_agent": True}
        channels = [
            ("facebook-it-help", "facebook", page, 300),
            ("instagram-ithelp", "instagram", {**page, "ig_user_id": demo["ig_user_id"]}, 300),
            (
                "whatsapp-it-help",
                "whatsapp",
                {
                    "phone_number_id": demo["phone_number_id"],
                    "waba_id": demo["waba_id"],
                    "access_token": demo["whatsapp_token"],
                },
                0,
            ),
        ]
        made = []
        for name, kind, raw, interval in channels:
            config, secrets = clean_channel_config(kind, {**raw, **common, "verify_token": demo["verify_token"]})
            channel, _ = Channel.objects.update_or_create(
                name=name,
                defaults={"kind": kind, "config": config, "secrets": secrets, "poll_interval_seconds": interval},
            )
            made.append((name, channel))
        return made
