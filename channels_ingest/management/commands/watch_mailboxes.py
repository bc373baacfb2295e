"""``manage.py watch_mailboxes``: wait on the mailboxes of email channels with ``idle`` on (IMAP IDLE) and queue a
poll as soon as mail arrives. Optional: without it, mail arrives at each channel's next poll."""

import signal
import threading

from django.core.management.base import BaseCommand

from channels_ingest.mail_watch import watch_mailboxes


class Command(BaseCommand):
    help = "Watch email channels with IDLE and poll them as soon as mail arrives."

    def handle(self, *args, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        self.stdout.write("Watching mailboxes with IDLE; Ctrl-C stops.")
        watch_mailboxes(stop)
