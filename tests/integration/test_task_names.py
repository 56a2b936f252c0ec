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
