from django.apps import AppConfig


class ReviewappConfig(AppConfig):
    name = "reviewapp"
    default_auto_field = "django.db.models.BigAutoField"
