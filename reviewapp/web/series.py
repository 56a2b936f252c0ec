"""Series list, a revision's page, the search box and fetch progress."""
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, prefetch_related_objects
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from untangle import lore

from .. import params
from ..models import FetchRequest, MailingList, PatchFile, Revision
from ..permissions import is_maintainer, maintainer_required
from ..selectors import revision_of_msgid, revision_or_404, series_page
from ..services import fetch
from ..pagecache import anonymous_cached
from . import (apply as apply_web, browse as browse_web, graph as graph_web, inflight as inflight_web,
               review as review_web, suites as suites_web)

PANELS = (review_web, inflight_web, graph_web, apply_web, suites_web, browse_web)


@anonymous_cached
def series_list(request):
    ctx = series_page(request.GET)
    ctx["lists"] = MailingList.objects.order_by("name").values_list("name", flat=True)[:200]
    query = request.GET.copy()
    query.pop("page", None)
    ctx["query"] = query.urlencode()
    return render(request, "series_list.html", ctx)


@anonymous_cached
def revision_detail(request, msgid):
    rev = revision_or_404(msgid)
    if rev.msgid != msgid:
        return redirect("series-detail", msgid=rev.msgid)
    context = {"rev": rev, "family": rev.series.revisions.order_by("version", "date")
               .only("id", "msgid", "version", "date", "title", "series_id"),
               "cover_trailers": rev.trailers.filter(patch=None),
               "replies": rev.messages.filter(kind="reply").order_by("date")
               .only("msgid", "from_name", "from_email", "date", "subject", "revision_id")[:REPLIES_SHOWN],
               "files_shown": FILES_SHOWN}
    context.update(_patch_page(rev, request.GET))
    if rev.partial_root:
        context.update(partial_root=rev.partial_root, can_fetch=is_maintainer(request.user),
                       lore_url=settings.LORE_URL)
    for panel in PANELS:
        context.update(panel.series_panel(request, rev))
    by_patch = review_web.review_by_patch(context.get("review"))
    for p in context["patches"]:
        p.review = by_patch.get(p.message.msgid)
    return render(request, "series_detail.html", context)


PATCHES_PER_PAGE, FILES_SHOWN, REPLIES_SHOWN = 100, 40, 200


def _patch_page(rev, query) -> dict:
    """A page of patches without their diffs and mail bodies, each with its first files:
    a series touching 5,000 files stays a small page. (A related manager sets the parent on
    every row it loads: .only() must keep the foreign key, or each row costs one query.)"""
    files = Prefetch("files", queryset=PatchFile.objects.only("id", "patch_id", "path", "old_blob", "new_blob")
                     .order_by("id"))
    patches = (rev.patches.select_related("message").only(
        "id", "revision_id", "number", "subject", "author_name", "author_email", "patch_id", "message__msgid")
        .annotate(file_count=Count("files")).order_by("number", "id"))
    page = params.page(Paginator(patches, PATCHES_PER_PAGE), query)
    shown = list(page.object_list)
    prefetch_related_objects(shown, files, "trailers")
    for p in shown:
        p.shown_files = p.files.all()[:FILES_SHOWN]
        p.more_files = max(0, p.file_count - FILES_SHOWN)
    return {"patches": shown, "patch_page": page}


def short_link(request, rev_id):
    return redirect("series-detail", msgid=get_object_or_404(Revision, id=rev_id).msgid)


def search(request):
    """A GET only looks up: unknown msgids get a page (maintainers: a fetch button that POSTs)."""
    query = (request.GET.get("q") or "").strip()
    try:
        msgid = lore.parse_ref(query)
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("series-list")
    rev = revision_of_msgid(msgid)
    if rev is not None:
        return redirect("series-detail", msgid=rev.msgid)
    pending = FetchRequest.objects.filter(msgid=msgid, state__in=fetch.PENDING).order_by("-id").first()
    return render(request, "not_stored.html", {"query": query, "msgid": msgid, "pending": pending,
                                               "can_fetch": is_maintainer(request.user)}, status=404)



@require_POST
@maintainer_required("fetch")
def search_fetch(request):
    """One fetch per msgid while one is pending: a second POST joins the first."""
    query = (request.POST.get("q") or "").strip()
    try:
        req, _ = fetch.queue_fetch(query)
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("series-list")
    return redirect("fetch-status", request_id=req.id)


def fetch_status(request, request_id):
    req = get_object_or_404(FetchRequest, id=request_id)
    if req.state == FetchRequest.DONE:
        rev = revision_of_msgid(req.msgid)
        if rev:
            return redirect("series-detail", msgid=rev.msgid)
    return render(request, "fetch_status.html", {"req": req})


urlpatterns = [
    path("", series_list, name="series-list"),
    path("search", search, name="search"),
    path("search/fetch", search_fetch, name="search-fetch"),
    path("fetch/<int:request_id>/", fetch_status, name="fetch-status"),
    path("s/<int:rev_id>", short_link, name="series-short"),
    path("series/<path:msgid>/", revision_detail, name="series-detail"),
]


def healthz(request):
    from django.db import connection
    from django.http import HttpResponse
    with connection.cursor() as cursor:
        cursor.execute("select 1")
    return HttpResponse("ok\n", content_type="text/plain")


urlpatterns.append(path("healthz", healthz, name="healthz"))
