"""Refuse malformed requests with 400 before any view sees them.

A NUL (or another C0 control character but tab/newline) in the path or a
parameter is never a valid tree path, message-id or search: it would reach
git's CGI environment (ValueError: embedded null byte) or PostgreSQL (which
refuses NUL in text) and turn into a 500.
"""
import re

from django.http import HttpResponseBadRequest

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _bad(value: str) -> bool:
    return bool(_CONTROL.search(value))


class RejectMalformedRequests:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # The REST API validates its own input against its schema (tests/api run schemathesis
        # over it), answering in JSON; a NUL there matches nothing instead.
        reason = "" if request.path.startswith("/api/") else self._reason(request)
        if reason:
            return HttpResponseBadRequest(f"bad request: {reason}\n", content_type="text/plain")
        return self.get_response(request)

    @staticmethod
    def _reason(request) -> str:
        if _bad(request.path):
            return "control character in the path"
        sources = [("query", request.GET)]
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            sources.append(("form", request.POST))  # never a git pack body
        for where, params in sources:
            for key, values in params.lists():
                if _bad(key) or any(_bad(v) for v in values):
                    return f"control character in {where} parameter {key[:40]!r}"
        return ""
