"""Tasks are sent by name (reviewapp.taskqueue), so a name the web sends and the worker does
not register would be lost silently: these tie the three lists together."""
from django.conf import settings

from reviewapp import taskqueue


def test_every_name_the_web_sends_is_a_task_the_worker_registers():
    import worker.tasks  # noqa: F401  (what a worker process imports when it starts)
    from worker.celery import app
    assert app is taskqueue.app  # one app: what the web sends with is what the worker serves
    registered = {name for name in app.tasks if name.startswith("worker.")}
    assert set(taskqueue.ALL) == registered


def test_beat_and_routes_name_registered_tasks_only():
    named = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} | set(settings.CELERY_TASK_ROUTES)
    assert named <= set(taskqueue.ALL), named - set(taskqueue.ALL)


def test_every_task_goes_to_the_queue_of_the_role_that_can_run_it():
    from reviewapp import tasknames
    roles = [name for names in tasknames.ROLES.values() for name in names]
    assert sorted(roles) == sorted(taskqueue.ALL)  # each task in exactly one role
    routes = tasknames.routes("ci-")
    assert routes[taskqueue.APPLY_RUN] == {"queue": "ci-apply"}
    assert routes[taskqueue.COMPUTE_INFLIGHT] == {"queue": "ci-apply"}  # applies: needs tree mirrors
    assert routes[taskqueue.RUN_SUITE] == {"queue": "ci-kernel"}
    assert routes[taskqueue.SEND_DUE_DIGESTS] == {"queue": "ci-mail"}
    assert routes[taskqueue.SYNC_LIST] == {"queue": "ci-ingest"}
    assert tasknames.queues("ci-") == ["ci-ingest", "ci-apply", "ci-kernel", "ci-mail"]
    assert settings.CELERY_TASK_ROUTES == tasknames.routes(settings.QUEUE_PREFIX)


def test_a_process_without_the_worker_sends_into_a_fresh_filesystem_broker(tmp_path):
    """A web host has no worker code loaded: its first send must still find (make) the
    broker's folders, and the message must name the task for the worker to run."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path
    code = ("import django, sys; django.setup()\n"
            "from django.db import transaction\n"
            "from reviewapp import dispatch\n"
            "with transaction.atomic():\n"
            "    dispatch.send_due_digests()\n"
            "assert 'worker' not in sys.modules, sorted(m for m in sys.modules if m.startswith('worker'))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "DATABASE_URL")}
    env.update(REVIEWAPP_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="reviewapp.settings")
    repo = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=repo, env=env, check=True, timeout=120)
    done = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    sent = [json.loads(p.read_text()) for p in (tmp_path / "broker").rglob("*") if p.is_file()]
    assert [m["headers"]["task"] for m in sent] == [taskqueue.SEND_DUE_DIGESTS]
