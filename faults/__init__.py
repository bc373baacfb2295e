"""The fault suite (`make faults`): the real helpdesk (Celery worker, beat, gunicorn) on its own throwaway
PostgreSQL and Redis, fed by the platform emulators, while processes are killed, services restarted and the
platforms storm. Each scenario counts what was sent, stored, duplicated and lost, in and out.

    python -m faults                          # every scenario, 10,000 messages each
    python -m faults --messages 500 --scenario worker-kill --scenario slack-storm-5xx
"""
