"""Who may do what: maintainers trigger work, reviewers read. Refusals are logged."""
from functools import wraps

from django.http import HttpResponseForbidden

from .models import AuditLog

MAINTAINERS = "maintainers"


def is_maintainer(user) -> bool:
    return bool(user.is_authenticated and (user.is_superuser or user.groups.filter(name=MAINTAINERS).exists()))


def maintainer_required(action: str):
    """A view decorator: 403 (and an audit row) for anyone but a maintainer."""
    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            allowed = is_maintainer(request.user)
            AuditLog.objects.create(user=request.user.get_username() or "anonymous", action=action,
                                    target=request.path, allowed=allowed)
            if not allowed:
                return HttpResponseForbidden(f"{action}: maintainers only\n")
            return view(request, *args, **kwargs)
        return wrapper
    return decorate
