"""End-to-end ingest benchmark: messages posted in an emulator → ticket messages in PostgreSQL.

Runs the real pipeline: real Celery workers on Redis poll the emulator with the
platform's real client (slack_sdk, tweepy), store inbound rows and ingest them
in batches. Each round starts from empty tables and a cold cache.

    python -m bench.ingest                      # Slack; last line "ingest: <N> msgs/s"
    python -m bench.ingest --platform x         # X mentions; also API calls and cost per 1,000 mentions
    python -m bench.ingest --platform meta      # signed Meta webhooks (bench/meta_webhooks.py)
    python -m bench.ingest --platform email     # mail in a real Dovecot, empty and with 100,000 tickets
                                                # (bench/email_ingest.py)
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from decimal import Decimal

from bench.setup import empty_tables, setup_django

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEOPLE = 200


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--platform", choices=["slack", "x", "meta", "email"], default="slack")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--thread-share", type=float, default=0.1, help="share of messages that are replies in threads")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (each with --concurrency)")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-post", type=int, default=1, help="meta: messages per webhook POST")
    parser.add_argument("--senders", type=int, default=16, help="meta: concurrent webhook senders")
    parser.add_argument("--rate", type=float, default=0, help="meta: messages offered per second (0: at once)")
    parser.add_argument("--seeded-tickets", type=int, default=100_000, help="email: tickets before the second set")
    parser.add_argument(
        "--imap-batch", type=int, help="email: the channel's batch_size (UIDs a page; default the adapter's)"
    )
    parser.add_argument("--gen-eml", default=None, help="email: path of the corpus generator, gen_eml.py")
    args = parser.parse_args()
    setup_django()
    if args.platform == "email":
        from bench import email_ingest

        args.gen_eml = args.gen_eml or email_ingest.GEN_EML
        return email_ingest.run(args, start_worker, wait_for_workers, wait_until_idle)
    if args.platform == "meta":
        from bench import meta_webhooks

        return meta_webhooks.run(args, start_worker, wait_for_workers, wait_until_idle)

    from django.core.cache import cache

    from helpdesk.celery import app
    from tickets.models import Message

    platform = {"slack": SlackRound, "x": XRound}[args.platform](args)
    workers = [start_worker(args.concurrency) for _ in range(args.workers)]
    try:
        wait_for_workers(app, len(workers))
        rates = []
        for round_number in range(1, args.rounds + 1):
            empty_tables()
            cache.clear()
            channel = platform.prepare()
            started = time.perf_counter()
            platform.feed(app, channel)
            while Message.objects.count() < args.messages:
                time.sleep(0.02)
            elapsed = time.perf_counter() - started
            rates.append(args.messages / elapsed)
            wait_until_idle(app)  # the next round empties the tables; nothing may still be writing
            print(
                f"round {round_number}: {args.messages} messages in {elapsed:.2f}s = {rates[-1]:.0f} msgs/s; "
                f"{platform.report(channel)}",
                flush=True,
            )
        assert Message.objects.values("external_id").distinct().count() == args.messages
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait()
        platform.emulator.stop()
    print(f"workers: {args.workers} x concurrency {args.concurrency}; median of {args.rounds} rounds")
    label = "ingest" if args.platform == "slack" else "ingest (x mentions)"
    print(f"{label}: {statistics.median(rates):.0f} msgs/s")


class SlackRound:
    """Top-level messages plus replies in 100 threads, from 200 people, read with conversations.history/replies."""

    def __init__(self, args):
        from emulators.slack import SlackEmulator

        self.args = args
        self.emulator = SlackEmulator(port=0).start()

    def prepare(self):
        from channel_adapters.slack import SlackAdapter
        from channels_ingest.models import Channel

        self.emulator.reset()
        self.people = [f"U{i:05d}" for i in range(PEOPLE)]
        for user in self.people:
            self.emulator.add_user(user, name=user.lower(), real_name=f"Employee {user}")
        config, secrets = SlackAdapter.split_config(
            {
                "bot_token": "xoxb-emulator",
                "conversations": ["C0GENERAL"],
                "base_url": self.emulator.base_url,
                "page_size": 999,
            }
        )
        self.calls_before = sum(self.emulator.stats()["calls"].values())
        return Channel.objects.create(
            kind="slack", name="bench", config=config, secrets=secrets, poll_interval_seconds=0
        )

    def feed(self, app, channel):
        """Everything at once, then one poll: the history API pages through any backlog."""
        replies = int(self.args.messages * self.args.thread_share)
        people = self.people
        parents = self.emulator.post_many(
            "C0GENERAL",
            [
                {"user": people[i % PEOPLE], "text": f"Issue {i}: VPN drops"}
                for i in range(self.args.messages - replies)
            ],
        )
        if replies:
            self.emulator.post_many(
                "C0GENERAL",
                [
                    {"user": people[i % PEOPLE], "text": f"follow-up {i}", "thread_ts": parents[i % 100]}
                    for i in range(replies)
                ],
            )
        app.send_task("channels_ingest.poll_channel", args=[channel.pk])

    def report(self, channel):
        calls = sum(self.emulator.stats()["calls"].values()) - self.calls_before
        return f"{calls} Slack API calls"


class XRound:
    """Direct @mentions plus replies in 100 conversations, from 200 people, read with the mentions timeline."""

    def __init__(self, args):
        from emulators.x import XEmulator

        self.args = args
        self.emulator = XEmulator(port=0).start()

    def prepare(self):
        from channel_adapters.x import XAdapter
        from channels_ingest.models import Channel

        self.emulator.reset()
        self.emulator.set_rate_limit("mentions", limit=100_000)  # measure the pipeline, not X's 300/15 min
        self.people = [self.emulator.add_user(username=f"emp{i}", name=f"Employee {i}")["id"] for i in range(PEOPLE)]
        config, secrets = XAdapter.split_config(
            {"bearer_token": "x-emulator-bearer", "base_url": self.emulator.url, "triage": {"auto_ticket": "all"}}
        )
        self.calls_before = sum(self.emulator.stats()["calls"].values())
        return Channel.objects.create(kind="x", name="bench-x", config=config, secrets=secrets, poll_interval_seconds=0)

    def feed(self, app, channel):
        """Bursts of 500 mentions, each followed by a poll: X only serves the newest 800 mentions,
        so a real channel polls well before a backlog grows past that."""
        from channels_ingest.models import InboundMessage

        replies = int(self.args.messages * self.args.thread_share)
        people = self.people
        roots = self.emulator.post_many(
            [{"author_id": people[i % PEOPLE], "text": f"@ithelp issue {i}: VPN drops"} for i in range(100)]
        )
        posts = [
            {"author_id": people[i % PEOPLE], "text": f"@ithelp issue {i}: VPN drops"}
            for i in range(100, self.args.messages - replies)
        ]
        posts += [
            {"author_id": people[i % PEOPLE], "text": f"@ithelp follow-up {i}", "in_reply_to_tweet_id": roots[i % 100]}
            for i in range(replies)
        ]
        posted = 100
        for start in range(0, len(posts) + 1, 500):
            burst = posts[start : start + 500]
            if burst:
                self.emulator.post_many(burst)
            posted += len(burst)
            app.send_task("channels_ingest.poll_channel", args=[channel.pk])
            while InboundMessage.objects.filter(channel=channel).count() < posted:
                time.sleep(0.01)

    def report(self, channel):
        from django.db.models import Sum

        calls = sum(self.emulator.stats()["calls"].values()) - self.calls_before
        cost = channel.usage.aggregate(total=Sum("cost"))["total"] or Decimal(0)
        per_thousand = 1000 / self.args.messages
        return (
            f"{calls} X API calls ({calls * per_thousand:.1f} per 1,000 mentions), "
            f"estimated cost ${cost:.2f} (${cost * Decimal(per_thousand):.2f} per 1,000 mentions)"
        )


def start_worker(concurrency):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "helpdesk",
            "worker",
            "-l",
            os.environ.get("BENCH_WORKER_LOG", "WARNING"),
            "-c",
            str(concurrency),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"bench-{os.getpid()}-{id(object())}@%h",
        ],
        cwd=ROOT,
        env=dict(os.environ),
    )


def wait_until_idle(app):
    while any((app.control.inspect(timeout=0.5).active() or {"": [1]}).values()):
        time.sleep(0.1)


def wait_for_workers(app, count, timeout=60):
    with app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(app.control.ping(timeout=0.5) or []) >= count:
            return
    sys.exit("Celery workers did not start.")


if __name__ == "__main__":
    main()
