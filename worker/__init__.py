# Importing the package loads the Celery app, so tasks sent from Django processes
# (views, commands) go to the configured broker, not to Celery's default one.
from .celery import app as celery_app

__all__ = ["celery_app"]
