"""OpenAPI generation: say which operations need no credentials (reads open to all)."""
from drf_spectacular.openapi import AutoSchema
from rest_framework.permissions import SAFE_METHODS

from .access import MaintainerWrites


class Schema(AutoSchema):
    def get_auth(self):
        auths = super().get_auth()
        open_read = self.method in SAFE_METHODS and any(
            isinstance(p, MaintainerWrites) for p in self.view.get_permissions())
        if open_read and {} not in auths:
            auths.append({})
        return auths

    def _get_response_bodies(self, direction="response"):
        """Add the error answers every operation may give (DRF's JSON: {"detail": ...} or
        {field: [reasons]}) unless the view documented them itself."""
        responses = super()._get_response_bodies(direction)
        codes = ["400", "404"]  # 404: an unknown name or id, or a bad page cursor
        if self.method not in SAFE_METHODS or not any(
                isinstance(p, MaintainerWrites) for p in self.view.get_permissions()):
            codes += ["401", "403"]
        for code in codes:
            responses.setdefault(code, {"description": "error", "content": {
                "application/json": {"schema": {"type": "object", "additionalProperties": True}}}})
        return responses
