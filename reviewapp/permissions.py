"""Who may do what: maintainers trigger work, reviewers read. Refusals are logged.

A refused action is one audit row per (actor, action, target, day) with a count, and
at most AUDIT_REFUSED_TARGETS distinct targets per actor, action and day (the rest
fold into target "*"), so an outsider hammering 403s cannot grow the table without
bound. Refused reads (GET/HEAD) write nothing: a GET only reads.
"""
import logging
from functools import wraps

from django.db import transaction
from django.db.models import F
from django.http import HttpResponseForbidden
from django.utils import timezone

from .models import AuditLog

MAINTAINERS = "maintainers"
AUDIT_REFUSED_TARGETS = 50
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
log = logging.getLogger("reviewapp.permissions")


def is_maintainer(user) -> bool:
    return bool(user.is_authenticated and (user.is_superuser or user.groups.filter(name=MAINTAINERS).exists()))


def audit(user: str, action: str, target: str, allowed: bool) -> None:
    if allowed:
        AuditLog.objects.create(user=user, action=action, target=target, allowed=True)
    else:
        _count_refusal(user, action, target)


def _count_refusal(user: str, action: str, target: str) -> None:
    now = timezone.now()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    with transaction.atomic():
        today = AuditLog.objects.filter(user=user, action=action, allowed=False, created__gte=start)
        if not today.filter(target=target).exists() and today.count() >= AUDIT_REFUSED_TARGETS:
            target = "*"
        if not today.filter(target=target).update(count=F("count") + 1, last=now):
            AuditLog.objects.create(user=user, action=action, target=target, allowed=False, last=now)


def maintainer_required(action: str):
    """A view decorator: 403 (and a counted audit row for actions) for anyone but a maintainer."""
    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            allowed = is_maintainer(request.user)
            user = request.user.get_username() or "anonymous"
            if request.method in SAFE_METHODS:
                if not allowed:
                    log.info("refused %s %s to %s", request.method, request.path, user)
            else:
                audit(user, action, request.path, allowed)
            if not allowed:
                return HttpResponseForbidden(f"{action}: maintainers only\n")
            return view(request, *args, **kwargs)
        return wrapper
    return decorate
