"""python -m faults [--messages N] [--scenario NAME ...] [--json FILE]: run the fault suite, print each scenario's
counts and a summary table; exit 1 if any scenario lost or duplicated anything, or left a reply neither sent once
nor visibly failed."""

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from .options import Options
from .services import Postgres, Redis, at_exit, free_port, missing_programs, stop_everything_on_signals


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__)
    default = Options()
    parser.add_argument(
        "--messages", type=int, default=default.messages, help="messages each scenario sends (default 10,000)"
    )
    parser.add_argument("--scenario", action="append", default=[], help="run only this scenario (repeatable)")
    parser.add_argument(
        "--outage-seconds", type=float, default=default.outage_seconds, help="how long Redis or PostgreSQL is down"
    )
    parser.add_argument(
        "--storm-seconds", type=float, default=default.storm_seconds, help="how long a platform storm lasts"
    )
    parser.add_argument(
        "--settle-timeout", type=float, default=default.settle_timeout, help="how long replies may take to settle"
    )
    parser.add_argument(
        "--ingest-timeout", type=float, default=default.ingest_timeout, help="how long ingestion may take"
    )
    parser.add_argument("--seed", type=int, default=default.seed, help="seeds the storms' draws")
    parser.add_argument("--sweep-seconds", type=float, default=5.0, help="beat's sweep interval (SWEEP_SECONDS)")
    parser.add_argument(
        "--fast-forward",
        action="store_true",
        help="when nothing is being delivered, play the sweep's delivery timers (lost retry, stuck send) at once",
    )
    parser.add_argument(
        "--client-timeout",
        type=float,
        default=default.client_timeout,
        help="seconds the channels' platform clients wait for an answer (default 15, the adapters' own)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--keep-logs", action="store_true", help="keep the run's folder (process logs) and say where")
    args = parser.parse_args(argv)

    stop_everything_on_signals()
    missing = missing_programs()
    if missing:
        print(f"The fault suite needs {', '.join(missing)} (bin/ensure-services installs them).", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="helpdesk-faults-"))
    if not args.keep_logs:
        at_exit(lambda: shutil.rmtree(folder, ignore_errors=True))
    redis, postgres = Redis(folder / "redis"), Postgres(folder / "postgres")
    redis.start()
    postgres.create()
    postgres.start()
    postgres.create_database()
    web_port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "helpdesk.settings",
        "DJANGO_DEBUG": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "DATABASE_URL": postgres.url,
        "CELERY_BROKER_URL": f"{redis.url}/0",
        "CACHE_URL": f"{redis.url}/1",
        "VAR_DIR": str(folder / "var"),
        "MEDIA_ROOT": str(folder / "media"),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
        "LOG_LEVEL": "WARNING",
        "SWEEP_SECONDS": str(args.sweep_seconds),
    }
    os.environ.update(env)

    import django

    django.setup()
    from django.core.management import call_command

    from helpdesk.celery import app as celery_app

    from .processes import Beat, Web, Worker
    from .report import table
    from .scenarios import BY_NAME, SCENARIOS, Stack, run_scenario

    unknown = [name for name in args.scenario if name not in BY_NAME]
    if unknown:
        print(f"Unknown scenario {', '.join(unknown)}; one of {', '.join(BY_NAME)}.", file=sys.stderr)
        return 2
    call_command("migrate", verbosity=0)
    options = Options(
        messages=args.messages,
        outage_seconds=args.outage_seconds,
        storm_seconds=args.storm_seconds,
        ingest_timeout=args.ingest_timeout,
        settle_timeout=args.settle_timeout,
        seed=args.seed,
        fast_forward=args.fast_forward,
        client_timeout=args.client_timeout,
    )
    processes = {
        "worker": Worker(env, folder, celery_app),
        "beat": Beat(env, folder),
        "web": Web(env, folder, web_port),
    }
    for process in processes.values():
        process.start()
    for process in processes.values():
        process.wait_ready()
    stack = Stack(redis=redis, postgres=postgres, options=options, **processes)

    results = []
    for scenario in [BY_NAME[name] for name in args.scenario] or SCENARIOS:
        print(
            f"\n{scenario.name}: {scenario.summary}, {options.messages} messages, {options.replies} replies", flush=True
        )
        result = run_scenario(stack, scenario)
        results.append(result)
        print(result.describe(), flush=True)
    print()
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([result.as_dict() for result in results], indent=2))
    if args.keep_logs:
        print(f"\nLogs: {folder}")
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
