"""The 400 page: says which value was wrong (the text of the BadRequest)."""
from django.http import HttpResponseBadRequest


def bad_request(request, exception=None):
    reason = str(exception) if exception is not None and str(exception) else "malformed request"
    return HttpResponseBadRequest(f"bad request: {reason}\n", content_type="text/plain; charset=utf-8")
