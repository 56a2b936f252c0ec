"""Who may call a trigger: the web UI's rule (reviewapp.permissions) and its audit log."""
from rest_framework.permissions import SAFE_METHODS, BasePermission

from ..models import AuditLog
from ..permissions import is_maintainer


class MaintainerWrites(BasePermission):
    """Anyone reads; only maintainers POST. Every POST leaves an AuditLog row, as on the web."""
    message = "maintainers only"

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        allowed = is_maintainer(request.user)
        AuditLog.objects.create(user=request.user.get_username() or "anonymous",
                                action=getattr(view, "audit_action", "api"),
                                target=request.path, allowed=allowed)
        return allowed


class MaintainerOnly(BasePermission):
    """Reads of maintainers' data (digest subscriptions)."""
    message = "maintainers only"

    def has_permission(self, request, view):
        return is_maintainer(request.user)
