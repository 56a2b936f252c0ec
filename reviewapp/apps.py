from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.test.signals import setting_changed


def _install_page_triggers(sender, using, **kwargs):
    from django.db import connections

    from .pagecache import install_triggers
    install_triggers(connections[using])


def _forget_pages(**kwargs):
    # A page renders settings too; they change at run time only under tests' overrides.
    from django.conf import settings
    from django.core.cache import caches
    try:
        caches[settings.PAGE_CACHE_ALIAS].clear()
    except Exception:  # noqa: BLE001 - an unreachable cache holds nothing to forget
        pass


class ReviewappConfig(AppConfig):
    name = "reviewapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # After every migrate, so a table or column that a migration added is watched too.
        post_migrate.connect(_install_page_triggers, sender=self, dispatch_uid="reviewapp-page-triggers")
        setting_changed.connect(_forget_pages, dispatch_uid="reviewapp-forget-pages")
