"""The worker's Celery app: reviewapp.taskqueue's, with the tasks of worker/ registered on it.
Settings come from Django's (CELERY_* names)."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")

from reviewapp.taskqueue import app, ensure_broker_dirs  # noqa: E402  (the app web processes send with)

app.autodiscover_tasks(["worker"])


import django  # noqa: E402

django.setup()
ensure_broker_dirs()
