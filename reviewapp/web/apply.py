"""Apply from the web: the series-page panel, run pages, trees, and git over HTTP."""
import logging
import os
import subprocess
import tempfile
import threading

from django.contrib import messages
from django.http import (Http404, HttpResponse, HttpResponseForbidden, HttpResponseNotAllowed,
                         JsonResponse, StreamingHttpResponse)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..models import ApplyRun, Patch, Revision, Tree
from ..permissions import is_maintainer, maintainer_required
from ..selectors import revision_or_404
from ..services import apply as service, results, trees

log = logging.getLogger("reviewapp.web.apply")
RECENT_RUNS = 10
ATTEMPTS_SHOWN = 200  # a guess may examine thousands of commits; the page shows the first ones
CHUNK = 64 * 1024


def series_panel(request, revision) -> dict:
    """Context for templates/apply/_series_panel.html on the series page."""
    return {"apply_trees": list(Tree.objects.order_by("name")),
            "apply_runs": list(ApplyRun.objects.filter(root=revision).select_related("tree")[:RECENT_RUNS]),
            "apply_can": is_maintainer(request.user)}


@maintainer_required("apply")
@require_POST
def apply_request(request, msgid):
    rev = revision_or_404(msgid)
    try:
        tree = trees.get_tree(request.POST.get("tree", ""))
    except trees.TreeError as exc:
        messages.error(request, str(exc))
        return redirect("series-detail", msgid=rev.msgid)
    run = service.request_apply(rev, tree, base=request.POST.get("base", "").strip() or None,
                                newest=request.POST.get("mode") == "newest", user=request.user)
    return redirect("apply-run", run_id=run.id)


def _status(run: ApplyRun) -> dict:
    data = service.run_dict(run)
    data.update(id=run.id, progress=run.progress, total=run.total,
                finished=run.status in service.FINISHED, error=run.error or None)
    return data


def run_json(request, run_id):
    return JsonResponse(_status(get_object_or_404(ApplyRun, id=run_id)))


def run_detail(request, run_id):
    run = get_object_or_404(ApplyRun.objects.select_related("tree", "root", "integration_of"), id=run_id)
    revs = {r.msgid: r for r in Revision.objects.filter(msgid__in=run.chain)}
    msgids = [a["msgid"] for a in run.applied] + ([run.failed["msgid"]] if run.failed and run.failed.get("msgid") else [])
    subjects = {p.message.msgid: p for p in Patch.objects.filter(message__msgid__in=msgids).select_related("message")}
    applied = [dict(a, patch=subjects.get(a["msgid"])) for a in run.applied]
    git_url = request.build_absolute_uri(f"/git/{run.tree.name}.git")
    attempt_keys = ("rule", "rev", "revision", "branch", "sha", "reason")
    attempts = [{k: a.get(k) for k in attempt_keys} for a in run.base_attempts[:ATTEMPTS_SHOWN]]
    context = {
        "run": run, "status": _status(run),
        "chain": [(m, revs.get(m)) for m in run.chain],
        "attempts": attempts, "failed": _failure_view(run.failed), "attempts_more": max(0, len(run.base_attempts) - ATTEMPTS_SHOWN),
        "applied": applied, "failed_patch": subjects.get((run.failed or {}).get("msgid")),
        "fetch_command": f"git fetch {git_url} {run.ref}" if run.ref else None,
        "browse_url": f"/tree/{run.id}/" if run.head else None,
        "finished": run.status in service.FINISHED,
    }
    return render(request, "apply/run.html", context)


def _failure_view(failed: dict | None) -> dict | None:
    """Every key the template reads, present (failures come in several shapes)."""
    if not failed:
        return None
    keys = ("msgid", "error", "files", "hunks", "line", "revision", "revision_title", "version",
            "number", "subject", "position")
    out = {k: failed.get(k) for k in keys}
    touched_keys = ("file", "lines", "commit", "by", "revision", "number", "subject")
    out["last_touched"] = [{k: t.get(k) for k in touched_keys} for t in failed.get("last_touched") or []]
    return out


def tree_list(request):
    rows = [(t, trees.tree_dict(t)) for t in Tree.objects.order_by("name")]
    return render(request, "apply/trees.html", {
        "trees": rows, "can_fetch": is_maintainer(request.user),
        "runs": ApplyRun.objects.select_related("tree", "root", "integration_of")[:20]})


@maintainer_required("tree-fetch")
@require_POST
def tree_fetch(request, name):
    tree = get_object_or_404(Tree, name=name)
    if trees.request_fetch(tree):
        messages.info(request, f"fetching {tree.name} from {tree.source}")
    else:
        messages.info(request, f"{tree.name} is already being fetched")
    return redirect("tree-list")


# ------------------------------------------------------------------ git smart HTTP

@csrf_exempt
def git_http(request, name, rest):
    """Read-only git smart HTTP for a tree's mirror, through `git http-backend` (CGI)."""
    if "receive-pack" in rest or request.GET.get("service") == "git-receive-pack":
        return HttpResponseForbidden("this repository is read-only\n")
    if request.method not in ("GET", "HEAD", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    tree = Tree.objects.filter(name=name).first()
    if tree is None or ".." in rest.split("/"):
        raise Http404(f"no tree {name}")
    if rest == "info/refs":
        # This host's mirror takes in what workers elsewhere published (a cache; no row written).
        try:
            results.import_published(tree)
        except trees.TreeError as exc:
            log.warning("git %s: %s", name, exc)
    if not trees.mirror_of(tree).is_dir():
        raise Http404(f"no mirror of {name} on this host")
    errors = tempfile.TemporaryFile()
    proc = subprocess.Popen(["git", "http-backend"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=errors, env=_cgi_env(request, name, rest))
    # Feed the body from a thread: the backend may start answering before it read it all.
    feeder = threading.Thread(target=_feed, args=(request, proc.stdin), daemon=True)
    feeder.start()
    status, headers = _read_cgi_headers(proc.stdout)
    if status >= 400:
        feeder.join(5)
        proc.wait(10)
        errors.seek(0)
        log.warning("git http-backend %s %s: %s %s", name, rest, status, errors.read()[:500])
        errors.close()
        return HttpResponse(proc.stdout.read(), status=status,
                            content_type=headers.pop("content-type", "text/plain"))
    response = StreamingHttpResponse(_stream(proc, feeder, errors), status=status,
                                     content_type=headers.pop("content-type", "application/octet-stream"))
    for key, value in headers.items():
        response[key] = value
    return response


def _cgi_env(request, name: str, rest: str) -> dict:
    meta = request.META
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/"),
           "GIT_PROJECT_ROOT": str(trees.mirrors_dir()), "GIT_HTTP_EXPORT_ALL": "1",
           "PATH_INFO": f"/{name}.git/{rest}", "QUERY_STRING": meta.get("QUERY_STRING", ""),
           "REQUEST_METHOD": "GET" if request.method == "HEAD" else request.method,
           "CONTENT_TYPE": meta.get("CONTENT_TYPE", ""), "REMOTE_ADDR": meta.get("REMOTE_ADDR", ""),
           "SERVER_PROTOCOL": meta.get("SERVER_PROTOCOL", "HTTP/1.1")}
    for key in ("CONTENT_LENGTH", "HTTP_CONTENT_ENCODING", "HTTP_GIT_PROTOCOL"):
        if meta.get(key):
            env[key] = meta[key]
    return env


def _feed(request, stdin) -> None:
    try:
        while True:
            chunk = request.read(CHUNK)
            if not chunk:
                break
            stdin.write(chunk)
    except (BrokenPipeError, OSError):
        pass
    finally:
        try:
            stdin.close()
        except OSError:
            pass


def _read_cgi_headers(stdout) -> tuple[int, dict]:
    status, headers = 200, {}
    for raw in iter(stdout.readline, b""):
        line = raw.decode("latin-1").rstrip("\r\n")
        if not line:
            break
        key, _, value = line.partition(":")
        if key.lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers[key.strip().lower()] = value.strip()
    return status, headers


def _stream(proc, feeder, errors):
    try:
        for chunk in iter(lambda: proc.stdout.read1(CHUNK), b""):
            yield chunk
    finally:
        if proc.poll() is None:  # the client went away mid-pack
            proc.kill()
        proc.wait()
        feeder.join(5)
        errors.close()


urlpatterns = [
    path("apply/<path:msgid>/", apply_request, name="apply-request"),
    path("runs/<int:run_id>/", run_detail, name="apply-run"),
    path("runs/<int:run_id>.json", run_json, name="apply-run-json"),
    path("trees/", tree_list, name="tree-list"),
    path("trees/<str:name>/fetch", tree_fetch, name="tree-fetch"),
    re_path(r"^git/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*?)\.git/(?P<rest>.*)$", git_http, name="git-http"),
]
