"""Where reviews stand: the panel on the series and graph pages, and the reviewer queues (/review/).
Both only read what the worker stored (ReviewState, ReviewPerson)."""
from datetime import datetime

from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

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
    ctx["rows"] = queue_rows(ctx["states"], bool(ctx["filters"]["reviewer"]), timezone.now())
    return render(request, "review/queue.html", ctx)


def waited(since: datetime | None, now: datetime) -> str:
    """How long a revision has waited, to the largest whole unit ("3 days", "5 months")."""
    if since is None:
        return ""
    days = max((now - since).days, 0)
    for size, unit in ((365, "year"), (30, "month"), (7, "week"), (1, "day")):
        if days >= size:
            n = days // size
            return f"{n} {unit}{'s' if n > 1 else ''}"
    return "today"


def queue_rows(states, with_reviewer: bool, now: datetime) -> str:
    """The queue's table rows, built here rather than in a template loop: a page of 50 rows
    cost 25 ms of template lookups, more than its queries (bench/page_profile.py)."""
    if not states:
        return ""
    out = []
    for s in states:
        rev = s.revision
        who = rev.author_name or rev.author_email
        when = timezone.localtime(s.waiting_since) if s.waiting_since else None
        stale = f' <span class="warn">· {s.stale} stale</span>' if s.stale else ""
        objections = (f'<span class="bad">{s.objections_open}</span>' if s.objections_open
                      else '<span class="muted">0</span>')
        you = ""
        if with_reviewer:
            you = f'<td class="muted">{escape(", ".join(s.reviewer_roles) or "reviewed an earlier revision")}</td>'
        list_name = rev.mailing_list.name if rev.mailing_list_id and rev.mailing_list else ""
        out.append(
            f'<tr><td><a href="{escape(reverse("series-detail", args=[rev.msgid]))}">{escape(rev.title)}</a> '
            f'<span class="muted">v{rev.version} · {escape(who)}</span></td>'
            f'<td class="muted">{when.strftime("%Y-%m-%d") if when else ""} '
            f'<span title="{when.strftime("%Y-%m-%d %H:%M") if when else ""}">({waited(s.waiting_since, now)})</span></td>'
            f'<td><span class="badge review-{escape(s.state)}">{escape(s.state)}</span></td>'
            f'<td>{s.reviewed} of {s.patches}{stale}</td><td>{objections}</td>{you}'
            f'<td class="muted">{escape(list_name)}</td></tr>')
    return mark_safe("\n".join(out))


urlpatterns = [
    path("review/", queue, name="review-queue"),
]
