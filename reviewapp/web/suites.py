"""Suite runs on the web: a run's page, a maintainer's start button, the series panel,
a badge for the graph page and the admin form that validates suite definitions."""
import io

from django import forms
from django.contrib import messages
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from ..models import ApplyRun, Suite, SuiteRun
from ..permissions import is_maintainer, maintainer_required
from ..services import results, suites

FINISHED = set(suites.VERDICTS)


class SuiteForm(forms.ModelForm):
    """Admin form: a definition is saved only when untangle.suite.validate_suite accepts it."""

    class Meta:
        model = Suite
        fields = ["name", "definition"]

    def clean(self):
        data = super().clean()
        if "definition" in data:
            errors = suites.definition_errors(data.get("name", ""), data["definition"])
            if errors:
                self.add_error("definition", errors)
        return data


def _run_context(run: SuiteRun) -> dict:
    tests = run.tests or []
    return {"run": run, "apply_run": run.apply_run, "tests": tests,
            "failed": [t for t in tests if t.get("result") == "not ok"],
            "finished": run.status in FINISHED, "problems": suites.problems(run),
            "log": suites.log_parts(run),
            "artifacts": results.artifact_names(run)}


def artifact(request, run_id, name):
    """The built kernel's bzImage or .config (uffd-kernel runs), from the database."""
    run = get_object_or_404(SuiteRun, id=run_id)
    data = results.artifact(run, name) if name in suites.KEPT_ARTIFACTS else None
    if data is None:
        raise Http404("no such artifact for this run")
    filename = "bzImage" if name == "bzImage" else f"config-suite-run-{run.id}"
    return FileResponse(io.BytesIO(data), as_attachment=True, filename=filename,
                        content_type="application/octet-stream" if name == "bzImage" else "text/plain")


def run_detail(request, run_id):
    run = get_object_or_404(SuiteRun.objects.select_related("suite", "apply_run__tree",
                                                            "apply_run__root", "apply_run__integration_of"),
                              id=run_id)
    context = _run_context(run)
    context["can_start"] = is_maintainer(request.user)
    return render(request, "suites/run_detail.html", context)


def run_json(request, run_id):
    """Live progress for scripts and the page: status, step and results so far."""
    run = get_object_or_404(SuiteRun, id=run_id)
    return JsonResponse({"id": run.id, "status": run.status, "step": run.step,
                         "finished": run.status in FINISHED, "tests": run.tests,
                         "duration_s": run.duration_s})


@maintainer_required("suite")
@require_POST
def start(request, apply_run_id):
    """Queue a fresh run (a maintainer's "run again": never reuses a finished result)."""
    apply_run = get_object_or_404(ApplyRun.objects.select_related("root", "integration_of"), id=apply_run_id)
    name = (request.POST.get("suite") or suites.DEFAULT_NAME).strip()
    suite = suites.builtin(name) or get_object_or_404(Suite, name=name)
    try:
        run = suites.request_run(apply_run, suite, user=request.user, force=True)
    except suites.NotApplied as exc:
        messages.error(request, str(exc))
        if apply_run.root is None:
            return redirect("list-inflight", name=apply_run.integration_of.name)
        return redirect("series-detail", msgid=apply_run.root.msgid)
    return redirect("suite-run", run_id=run.id)


def suite_badge(apply_run: ApplyRun) -> dict | None:
    """The newest result for this chain's head, for a badge on the graph page:
    {"status", "label", "url", "suite", "failed": [test names], "title"}; None if never run."""
    run = suites.latest(apply_run)
    if run is None:
        return None
    failed = [t["name"] for t in run.tests or [] if t.get("result") == "not ok"]
    label = run.status if run.status in FINISHED else f"{run.status}…"
    title = f"{run.suite.name}: {run.status}" + (f" ({', '.join(failed)})" if failed else "")
    return {"status": run.status, "label": label, "suite": run.suite.name, "failed": failed,
            "url": reverse("suite-run", kwargs={"run_id": run.id}), "title": title}


def _chains(revision) -> list[ApplyRun]:
    """The latest applied ApplyRun per (tree, head) rooted at this revision."""
    seen, chains = set(), []
    runs = (ApplyRun.objects.filter(root=revision, status=ApplyRun.APPLIED)
            .exclude(head="").select_related("tree").order_by("-created", "-id"))
    for run in runs:
        key = (run.tree_id, run.head)
        if key not in seen:
            seen.add(key)
            chains.append(run)
    return chains


def series_panel(request, revision) -> dict:
    """Context for templates/suites/_series_panel.html: latest suite results per chain."""
    rows = []
    for apply_run in _chains(revision):
        results = [{"run": r, "failed": [t["name"] for t in r.tests or [] if t.get("result") == "not ok"],
                    "finished": r.status in FINISHED} for r in suites.latest_per_suite(apply_run)]
        rows.append({"apply_run": apply_run, "results": results})
    return {"suite_chains": rows, "suite_can_start": is_maintainer(request.user),
            "suite_names": list(Suite.objects.order_by("name").values_list("name", flat=True))
            or [suites.DEFAULT_NAME]}


urlpatterns = [
    path("suite-runs/<int:run_id>/", run_detail, name="suite-run"),
    path("suite-runs/<int:run_id>.json", run_json, name="suite-run-json"),
    path("suite-runs/start/<int:apply_run_id>/", start, name="suite-run-start"),
    path("suite-runs/<int:run_id>/artifacts/<str:name>", artifact, name="suite-run-artifact"),
]
