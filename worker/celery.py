"""The worker's Celery app: reviewapp.taskqueue's, with the tasks of worker/ registered on it.
Settings come from Django's (CELERY_* names)."""
import os
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")

from reviewapp.taskqueue import app  # noqa: E402  (the app web processes send with)

app.autodiscover_tasks(["worker"])


def _ensure_broker_dirs() -> None:
    # The filesystem transport (the default, needing no server) wants its folders.
    from django.conf import settings
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get(key)
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)


import django  # noqa: E402

django.setup()
_ensure_broker_dirs()
