"""Series in flight together: a list's open series and the conflicts between them
(/lists/<name>/inflight), one conflict's hunks from both sides (/conflicts/<id>/), and the
line on the series page. All read what the in-flight computation stored."""
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.urls import path

from .. import params
from ..models import ApplyRun, InflightConflict, MailingList, Suite
from ..pagecache import anonymous_cached
from ..permissions import is_maintainer
from ..selectors import conflicts_of, inflight_of
from ..services import suites
from .suites import suite_badge

CONFLICTS_PER_PAGE = 50


def series_panel(request, revision) -> dict:
    """Context for the series page: the open series this one conflicts with."""
    return {"conflicts": conflicts_of(revision)}


@anonymous_cached
def list_inflight(request, name):
    mlist = get_object_or_404(MailingList, name=name)
    data = inflight_of(mlist)
    if data is None:
        raise Http404(f"nothing computed in flight for {mlist.name} yet (manage.py inflight {mlist.name})")
    page = params.page(Paginator(data["conflicts"], CONFLICTS_PER_PAGE), request.GET)
    conflicted = {m for c in data["conflicts"] for m in (c["a"], c["b"])}
    return render(request, "inflight/list.html", {"data": data, "page": page, "conflicted": conflicted,
                                                  **_integration_context(request, mlist, data)})


def _integration_context(request, mlist, data) -> dict:
    """The integration branch's run: browse it (per-line provenance) and, for a
    maintainer, start a suite on it as on a chain."""
    run_id = (data.get("integration") or {}).get("run")
    run = ApplyRun.objects.filter(id=run_id, integration_of=mlist).first() if run_id else None
    if run is None:
        return {"integration_run": None}
    return {"integration_run": run, "integration_suite": suite_badge(run),
            "suite_can_start": is_maintainer(request.user),
            "suite_names": list(Suite.objects.order_by("name").values_list("name", flat=True))
            or [suites.DEFAULT_NAME]}


@anonymous_cached
def conflict_detail(request, conflict_id):
    c = get_object_or_404(InflightConflict.objects.select_related("a", "b", "mailing_list"), id=conflict_id)
    files = [dict(f, hunks=[dict(h, ours_text="\n".join(h["ours"]), theirs_text="\n".join(h["theirs"]))
                            for h in f["hunks"]]) for f in c.files]
    return render(request, "inflight/conflict.html", {"c": c, "files": files})


urlpatterns = [
    path("lists/<str:name>/inflight", list_inflight, name="list-inflight"),
    path("conflicts/<int:conflict_id>/", conflict_detail, name="conflict-detail"),
]
