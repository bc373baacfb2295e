"""End-to-end ingest benchmark: messages posted in the Slack emulator → ticket messages in PostgreSQL.

Runs the real pipeline: a real Celery worker on Redis polls the emulator with
slack_sdk, stores inbound rows and ingests them in batches. Prints messages
per second as its last line: ``ingest: <N> msgs/s``.

    make bench-ingest            # or: python -m bench.ingest --messages 5000 --workers 1
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

from bench.setup import empty_tables, setup_django

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--thread-share", type=float, default=0.1, help="share of messages that are thread replies")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (each with --concurrency)")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    setup_django()

    from django.core.cache import cache

    from channels_ingest.adapters.slack import SlackAdapter
    from channels_ingest.models import Channel
    from emulators.slack import SlackEmulator
    from helpdesk.celery import app
    from tickets.models import Message

    emulator = SlackEmulator(port=0).start()
    workers = [start_worker(args.concurrency) for _ in range(args.workers)]
    try:
        wait_for_workers(app, len(workers))
        rates = []
        for round_number in range(1, args.rounds + 1):
            empty_tables()
            cache.clear()  # every round starts cold: users.info is called for each of the 200 people
            emulator.reset()
            users = [f"U{i:05d}" for i in range(200)]
            for user in users:
                emulator.add_user(user, name=user.lower(), real_name=f"Employee {user}")
            config, secrets = SlackAdapter.split_config(
                {"bot_token": "xoxb-emulator", "conversations": ["C0GENERAL"], "base_url": emulator.base_url,
                 "page_size": 999}
            )
            channel = Channel.objects.create(kind="slack", name="bench", config=config, secrets=secrets,
                                             poll_interval_seconds=0)
            calls_before = sum(emulator.stats()["calls"].values())

            replies = int(args.messages * args.thread_share)
            parents_count = args.messages - replies
            started = time.perf_counter()
            parents = emulator.post_many(
                "C0GENERAL", [{"user": users[i % len(users)], "text": f"Issue {i}: VPN drops"} for i in range(parents_count)]
            )
            if replies:
                emulator.post_many(
                    "C0GENERAL",
                    [{"user": users[i % len(users)], "text": f"follow-up {i}", "thread_ts": parents[i % 100]}
                     for i in range(replies)],
                )
            app.send_task("channels_ingest.poll_channel", args=[channel.pk])
            while Message.objects.count() < args.messages:
                time.sleep(0.02)
            elapsed = time.perf_counter() - started
            wait_until_idle(app)  # the next round empties the tables; nothing may still be writing
            rate = args.messages / elapsed
            rates.append(rate)
            calls = sum(emulator.stats()["calls"].values()) - calls_before
            print(f"round {round_number}: {args.messages} messages in {elapsed:.2f}s = {rate:.0f} msgs/s "
                  f"({calls} Slack API calls)", flush=True)
        assert Message.objects.values("external_id").distinct().count() == args.messages
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait()
        emulator.stop()
    print(f"workers: {args.workers} x concurrency {args.concurrency}; median of {args.rounds} rounds")
    print(f"ingest: {statistics.median(rates):.0f} msgs/s")


def start_worker(concurrency):
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "helpdesk", "worker", "-l", os.environ.get("BENCH_WORKER_LOG", "WARNING"), "-c", str(concurrency),
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"bench-{os.getpid()}-{id(object())}@%h"],
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
