from django.contrib import admin

from . import models
from .web.suites import SuiteForm


@admin.register(models.Suite)
class SuiteAdmin(admin.ModelAdmin):
    list_display = ("name",)
    form = SuiteForm


@admin.register(models.Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("address", "name", "period", "active")


@admin.register(models.Tree)
class TreeAdmin(admin.ModelAdmin):
    list_display = ("name", "source", "state", "fetched")


@admin.register(models.Revision)
class RevisionAdmin(admin.ModelAdmin):
    list_display = ("title", "version", "received", "expected", "author_email", "date")
    search_fields = ("title", "msgid")


for model in (models.MailingList, models.Series, models.AuditLog, models.ApplyRun, models.SuiteRun,
              models.Digest, models.FetchRequest):
    admin.site.register(model)
