"""Where reviews stand: the panel on the series and graph pages, and the reviewer queues (/review/).
Both only read what the worker stored (ReviewState, ReviewPerson)."""
from django.shortcuts import render
from django.urls import path

from ..pagecache import anonymous_cached
from ..selectors import review_of, review_queue


def series_panel(request, revision) -> dict:
    """Context for templates/review/_panel.html: this series' review and its chain's."""
    return {"review": review_of(revision)}


def review_by_patch(review: dict | None) -> dict:
    """patch msgid -> its review entry, for the patch table."""
    return {p["msgid"]: p for p in (review or {}).get("patches", [])}


@anonymous_cached
def queue(request):
    ctx = review_queue(request.GET)
    query = request.GET.copy()
    query.pop("page", None)
    ctx["query"] = query.urlencode()
    return render(request, "review/queue.html", ctx)


urlpatterns = [
    path("review/", queue, name="review-queue"),
]
