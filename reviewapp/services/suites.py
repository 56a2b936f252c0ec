"""Suite runs: boot a chain's consolidated tree and keep the verdict on a SuiteRun row.

A result belongs to (suite, tree, head commit): the same head always gives the same
tree, so a finished run is reused for any ApplyRun with that head, and a chain that
changes (a new head) gets a run of its own. The work itself is untangle.suite.run_suite;
this module exports the tree, feeds it the kernel and writes the outcome to our tables.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from untangle import gitrepo
from untangle.suite import (DEFAULT_SUITE, UFFD_KERNEL_SUITE, UFFD_KVM_KERNEL_SUITE, SuiteResult, SuiteTest,
                            compare_with_base, run_suite, validate_suite)

from ..models import ApplyRun, Suite, SuiteRun
from . import leases, results

log = logging.getLogger("reviewapp.suites")

DEFAULT_NAME = DEFAULT_SUITE["name"]
VERDICTS = SuiteRun.VERDICTS
ACTIVE = (SuiteRun.QUEUED, SuiteRun.RUNNING)
# "error" is left out: it is mostly about this host (no kernel, no sandbox, a broken
# export), so the next request for that head tries again instead of reusing it.
REUSABLE = ("pass", "fail", "timeout", "crashed")
SERIAL_MARK = "--- serial console ---\n"
# A queued/running row older than this lost its worker (killed mid-boot, broker purged):
# it is closed as an error so that the chain can be requested again.
STALE_AFTER = timedelta(hours=1)


class NotApplied(ValueError):
    """A suite needs a tree: only an applied ApplyRun has one."""


# --------------------------------------------------------------------------- suites

def ensure_default_suite() -> Suite:
    """The "uffd-faults" suite from DEFAULT_SUITE; an admin's later edits are kept."""
    definition = {k: v for k, v in DEFAULT_SUITE.items() if k != "name"}
    suite, _ = Suite.objects.get_or_create(name=DEFAULT_NAME, defaults={"definition": definition})
    return suite


def ensure_kernel_suite(template: dict = UFFD_KERNEL_SUITE) -> Suite:
    """A built-in kernel suite ("uffd-kernel", "uffd-kvm-kernel"): the chain's own kernel,
    built and booted."""
    definition = {k: v for k, v in template.items() if k != "name"}
    suite, _ = Suite.objects.get_or_create(name=template["name"], defaults={"definition": definition})
    return suite


def builtin(name: str) -> Suite | None:
    """A built-in suite by name (created on first use), else None."""
    if name == DEFAULT_NAME:
        return ensure_default_suite()
    for template in (UFFD_KERNEL_SUITE, UFFD_KVM_KERNEL_SUITE):
        if name == template["name"]:
            return ensure_kernel_suite(template)
    return None


def builds_kernel(definition: dict) -> bool:
    return ((definition.get("kernel") or {}).get("source")) == "tree"


def kernel_cache_dir() -> Path:
    # Under VAR_DIR (not a test's DATA_DIR): ccache and built kernels survive between
    # runs and CI passes in one clone; bounded by SUITE_KERNEL_CACHE_MB.
    return Path(settings.VAR_DIR) / "kernel-cache"


def artifacts_dir(suite_run: SuiteRun) -> Path:
    return Path(settings.DATA_DIR) / "suite-artifacts" / str(suite_run.id)


def definition_of(suite: Suite) -> dict:
    """The runnable definition: the row's name wins over any name inside the JSON."""
    data = suite.definition if isinstance(suite.definition, dict) else {}
    return {**data, "name": suite.name}


def definition_errors(name: str, definition) -> list[str]:
    """What is wrong with a definition about to be saved under `name` (admin form)."""
    if not isinstance(definition, dict):
        return ["the definition must be a JSON object"]
    return validate_suite({**definition, "name": name or definition.get("name", "")})


def kernel_image() -> Path:
    """settings.KERNEL_IMAGE; a directory (like scripts/fetch-kernel's var/kernel) means
    the newest vmlinuz-* in it or its boot/, since the file name carries Debian's ABI."""
    path = Path(settings.KERNEL_IMAGE)
    if path.is_dir():
        found = sorted(list(path.glob("vmlinuz-*")) + list(path.glob("boot/vmlinuz-*")),
                       key=lambda p: _version_key(p.name))
        if found:
            return found[-1]
    return path


def _version_key(name: str) -> list:
    return [int(part) if part.isdigit() else part
            for part in name.replace("-", ".").split(".")]


# --------------------------------------------------------------------------- lookups

def _same_chain(apply_run: ApplyRun, suite: Suite):
    """SuiteRuns of `suite` on any ApplyRun that produced the same tree head."""
    return SuiteRun.objects.filter(suite=suite, apply_run__tree_id=apply_run.tree_id,
                                   apply_run__head=apply_run.head)


def latest(apply_run: ApplyRun, suite: Suite | None = None) -> SuiteRun | None:
    """The newest SuiteRun for this chain's head (of `suite`, or of any suite)."""
    if not apply_run.head:
        return None
    runs = SuiteRun.objects.filter(apply_run__tree_id=apply_run.tree_id,
                                   apply_run__head=apply_run.head)
    if suite is not None:
        runs = runs.filter(suite=suite)
    return runs.select_related("suite", "apply_run").order_by("-created", "-id").first()


def latest_per_suite(apply_run: ApplyRun) -> list[SuiteRun]:
    """The newest run of each suite for this chain's head, by suite name."""
    if not apply_run.head:
        return []
    seen: dict[int, SuiteRun] = {}
    runs = (SuiteRun.objects.filter(apply_run__tree_id=apply_run.tree_id,
                                    apply_run__head=apply_run.head)
            .select_related("suite", "apply_run").order_by("-created", "-id"))
    for run in runs:
        seen.setdefault(run.suite_id, run)
    return sorted(seen.values(), key=lambda r: r.suite.name)


def _reusable(apply_run: ApplyRun, suite: Suite) -> SuiteRun | None:
    return (_same_chain(apply_run, suite).filter(status__in=REUSABLE)
            .order_by("-finished", "-id").first())


def _check_applied(apply_run: ApplyRun) -> None:
    if apply_run.status != ApplyRun.APPLIED or not apply_run.head:
        raise NotApplied(f"apply run {apply_run.id} is {apply_run.status}, not applied: "
                         "there is no tree to test")


# --------------------------------------------------------------------------- requests

def request_run(apply_run: ApplyRun, suite: Suite | None = None, user=None,
                force: bool = False) -> SuiteRun:
    """A queued SuiteRun for this chain, its Celery task sent once the transaction commits.

    Reuses, without booting anything: a queued or running run of the same head, and
    (unless `force`, a maintainer's "run again") the latest finished one.
    """
    _check_applied(apply_run)
    suite = suite or ensure_default_suite()
    _close_stale(apply_run, suite)
    if not force:  # "run again" always starts a new run, even beside a stuck one
        existing = _same_chain(apply_run, suite).filter(status__in=ACTIVE).order_by("-id").first()
        existing = existing or _reusable(apply_run, suite)
        if existing is not None:
            return existing
    run = SuiteRun.objects.create(apply_run=apply_run, suite=suite, step="queued")
    if user is not None:
        log.info("suite %s on apply run %s requested by %s", suite.name, apply_run.id, user)
    from .. import dispatch
    dispatch.run_suite(run.id)
    return run


def _close_stale(apply_run: ApplyRun, suite: Suite) -> None:
    _same_chain(apply_run, suite).filter(
        status__in=ACTIVE, created__lt=timezone.now() - STALE_AFTER).update(
        status="error", step="done", finished=timezone.now(),
        log=_log_text(SuiteResult.error(f"abandoned: no verdict within {STALE_AFTER} (worker lost?)")))


def after_apply(apply_run: ApplyRun) -> SuiteRun | None:
    """Hook for the apply service: queue the default suite for an applied chain when
    settings.SUITE_AFTER_APPLY is on. The same head reuses its result; None if skipped."""
    if not settings.SUITE_AFTER_APPLY or apply_run.status != ApplyRun.APPLIED or not apply_run.head:
        return None
    return request_run(apply_run, ensure_default_suite())


def claim(suite_run_id: int) -> bool:
    """Take a queued run; False when another worker (or the CLI) already has it."""
    return SuiteRun.objects.filter(
        leases.claimable("status", [SuiteRun.QUEUED], SuiteRun.RUNNING), id=suite_run_id).update(
        status=SuiteRun.RUNNING, step="starting", **leases.lease_fields()) == 1


def run_queued(suite_run_id: int) -> SuiteRun | None:
    """The Celery task's body: claim, execute, None when there was nothing to claim."""
    if not claim(suite_run_id):
        return None
    return execute(SuiteRun.objects.select_related("apply_run__tree", "suite").get(id=suite_run_id))


def run(apply_run: ApplyRun, suite: Suite | None = None) -> SuiteRun:
    """Run `suite` on the chain in this process (the CLI) and return the finished row.

    Reuses the latest finished run of the same head; takes over a queued one (so an
    after-apply request is not booted twice); otherwise starts a new row.
    """
    _check_applied(apply_run)
    suite = suite or ensure_default_suite()
    done = _reusable(apply_run, suite)
    if done is not None:
        return done
    for queued in _same_chain(apply_run, suite).filter(status=SuiteRun.QUEUED).order_by("id"):
        if claim(queued.id):
            return execute(SuiteRun.objects.select_related("apply_run__tree", "suite").get(id=queued.id))
    row = SuiteRun.objects.create(apply_run=apply_run, suite=suite, status=SuiteRun.RUNNING,
                                  step="starting", **leases.lease_fields())
    return execute(row)


# --------------------------------------------------------------------------- execution

def execute(suite_run: SuiteRun) -> SuiteRun:
    """Export the head's tree, run the suite, store the verdict. The row must be claimed
    (status running). Never raises for a broken tree or host: those end as "error"."""
    apply_run, definition = suite_run.apply_run, definition_of(suite_run.suite)
    try:
        scratch = _scratch_dir(suite_run.id)
    except OSError as exc:  # a full or read-only data dir is an error verdict, not a stuck row
        return _store(suite_run, SuiteResult.error(f"scratch dir: {exc}"))
    kept = artifacts_dir(suite_run)
    try:
        with leases.heartbeat(SuiteRun, suite_run.id):
            result = _execute(suite_run, apply_run, definition, scratch)
            # Into the database: the web host that serves them is not this one.
            result = result.with_problems(after=results.store_artifacts(suite_run, kept, KEPT_ARTIFACTS))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(kept, ignore_errors=True)
    return _store(suite_run, result)


KEPT_ARTIFACTS = ("bzImage", "config")  # what a kernel-building suite keeps for download


def _execute(suite_run: SuiteRun, apply_run: ApplyRun, definition: dict, scratch: Path) -> SuiteResult:
    try:
        notes = _export(apply_run, definition, scratch / "tree")
        result = run_suite(scratch / "tree", definition, kernel_image(), scratch / "work",
                           progress=lambda step, status: _progress(suite_run.id, step, status),
                           **_run_options(definition, apply_run.tree_sha, artifacts_dir(suite_run)))
        result = result.with_problems(before=notes)
        if builds_kernel(definition) and result.status in ("fail", "crashed"):
            shutil.rmtree(scratch / "tree", ignore_errors=True)
            result = _name_regressions(suite_run, definition, result, scratch)
    except Exception as exc:  # noqa: BLE001 -- any failure must end the row, not leave it running
        log.exception("suite run %s failed", suite_run.id)
        result = SuiteResult.error(f"{type(exc).__name__}: {exc}")
    return result


def scratch_dirs(run_id: int) -> list[Path]:
    """The scratch dirs of a run (the reaper removes a lost worker's)."""
    return sorted((Path(settings.DATA_DIR) / "suite-work").glob(f"run-{run_id}-*"))


def lost_fields(row: SuiteRun) -> dict:
    """How the reaper ends a run whose worker died twice: an error saying so."""
    return {"status": "error", "step": "done", "finished": timezone.now(),
            "log": _log_text(SuiteResult.error(f"failed: {leases.WORKER_LOST} (its lease expired)"))}


def _run_options(definition: dict, key: str, artifacts: Path | None) -> dict:
    options = {"bwrap": settings.SUITE_BWRAP, "allow_weak_sandbox": settings.SUITE_ALLOW_WEAK_SANDBOX}
    if builds_kernel(definition):
        options.update(kernel_cache=kernel_cache_dir(), kernel_key=key or None,
                       kernel_cache_mb=settings.SUITE_KERNEL_CACHE_MB, artifacts_dir=artifacts)
    return options


def _name_regressions(suite_run: SuiteRun, definition: dict, result: SuiteResult,
                      scratch: Path) -> SuiteResult:
    """Run the suite on the chain's base too (its result cached per base) and name the
    tests failing only on the chain, with the last applied patch touching the suite's paths."""
    apply_run = suite_run.apply_run
    base_tests = _base_tests(apply_run, definition, scratch)
    if base_tests is None:
        return result.with_problems(after=["base: no result for the base; regressions not named"])
    verdict = compare_with_base(result.tests, base_tests)
    blame = _last_patch_touching(apply_run, definition.get("paths") or [])
    who = f" (last touched by {blame})" if blame else ""
    notes = [f"regression: {name} fails here but passes on the base{who}" for name in verdict.regressions]
    notes += [f"pre-existing: {name} fails on the base too" for name in verdict.pre_existing]
    tests = tuple(replace(t, regression=True, blame=blame) if t.name in verdict.regressions else t
                  for t in result.tests)
    return replace(result.with_problems(after=notes), tests=tests)


def _base_tests(apply_run: ApplyRun, definition: dict, scratch: Path) -> list[SuiteTest] | None:
    """The base's tests, from the per-base cache file ({"status", "tests"}) or a run."""
    import hashlib
    import json
    digest = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]
    cached = kernel_cache_dir() / "base-results" / f"{apply_run.base}-{digest}.json"
    if cached.is_file():
        return [SuiteTest.from_json(t) for t in json.loads(cached.read_text())["tests"]]
    base_tree = scratch / "base"
    gitrepo.export_tree(_mirror(apply_run), apply_run.base, base_tree)
    result = run_suite(base_tree, definition, kernel_image(), scratch / "work-base",
                       **_run_options(definition, f"base:{apply_run.base}", None))
    if result.status not in REUSABLE:
        return None
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps({"status": result.status, "tests": [t.to_json() for t in result.tests]}))
    return list(result.tests)


def _last_patch_touching(apply_run: ApplyRun, paths: list[str]) -> str:
    """The msgid of the last applied patch whose commit changes one of ``paths``."""
    repo = _mirror(apply_run)
    for entry in reversed(apply_run.applied or []):
        changed = gitrepo.changed_files(repo, f"{entry['commit']}^", entry["commit"])
        if any(p == d.rstrip("/") or p.startswith(d) for p in changed for d in paths):
            return entry["msgid"]
    return ""


def _scratch_dir(run_id: int) -> Path:
    base = Path(settings.DATA_DIR) / "suite-work"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"run-{run_id}-", dir=base))


def export_paths(definition: dict) -> list[str] | None:
    """Tree paths the suite reads: its declared paths plus its sources and include dirs.
    None (the whole tree) when it declares none, e.g. a build command running make."""
    declared = list(definition.get("paths") or [])
    if not declared or builds_kernel(definition):
        return None
    build = (definition.get("steps") or {}).get("build") or {}
    extra = [s for prog in build.get("programs") or [] for s in prog.get("sources", [])]
    extra += list(build.get("include_dirs") or [])
    covered = lambda p: any(p.strip("/").startswith(d.strip("/") + "/") for d in declared)  # noqa: E731
    return declared + [p for p in extra if not covered(p) and p not in declared]


def _export(apply_run: ApplyRun, definition: dict, dest: Path) -> list[str]:
    """Write the head's files into dest; returns notes about declared paths it lacks
    (their absence then shows up as a build error naming the missing source)."""
    repo, notes = _mirror(apply_run), []
    dest.mkdir(parents=True)
    paths = export_paths(definition)
    for path in paths or [None]:
        try:
            gitrepo.export_tree(repo, apply_run.head, dest, paths=[path] if path else None)
        except FileNotFoundError:
            notes.append(f"tree: {path} does not exist at {apply_run.head[:12]}")
    return notes


def _mirror(apply_run: ApplyRun) -> Path:
    # This host's mirror with the chain's commits: the apply may have run on another host.
    return results.local_mirror(apply_run)


def _progress(run_id: int, step: str, status: str) -> None:
    # A plain UPDATE: the page polls this row while the boot goes on.
    SuiteRun.objects.filter(id=run_id).update(step=f"{step}: {status}"[:40])


def _store(suite_run: SuiteRun, result: SuiteResult) -> SuiteRun:
    status = result.status if result.status in VERDICTS else "error"
    suite_run.status = status
    suite_run.step = "done"
    suite_run.tests = [t.to_json() for t in result.tests]  # the stored JSON shape
    suite_run.log = _log_text(result)
    suite_run.duration_s = result.duration_s or 0.0
    suite_run.finished = timezone.now()
    suite_run.lease_until = None  # a verdict ends the lease
    suite_run.save(update_fields=["status", "step", "tests", "log", "duration_s", "finished", "lease_until"])
    return suite_run


def _log_text(result: SuiteResult) -> str:
    """The stored log: a summary (steps, sandbox, problems), then build output and the
    serial console exactly as run_suite gave them."""
    lines = ["steps: " + ", ".join(f"{s.name} {s.status} {s.duration_s}s" for s in result.steps)]
    lines.append(f"sandbox: {result.sandbox or 'none'}")
    lines += [f"problem: {p}" for p in result.problems]
    return "\n".join(lines) + "\n--- build output ---\n" + result.log


def log_parts(suite_run: SuiteRun) -> dict:
    """The stored log split for display: summary, build output, serial console."""
    text = suite_run.log or ""
    summary, _, rest = text.partition("\n--- build output ---\n")
    if not _:
        summary, rest = "", text
    build, _, serial = rest.partition(SERIAL_MARK)
    return {"summary": summary, "build": build, "serial": serial}


def problems(suite_run: SuiteRun) -> list[str]:
    return [line[len("problem: "):] for line in log_parts(suite_run)["summary"].splitlines()
            if line.startswith("problem: ")]


def result_dict(suite_run: SuiteRun) -> dict:
    """The CLI contract's shape."""
    data = {"status": suite_run.status if suite_run.status in VERDICTS else "error",
            "tests": [{"name": t.get("name", ""), "result": t.get("result", ""),
                       "detail": t.get("detail", "")} for t in suite_run.tests],
            "log": suite_run.log, "duration_s": float(suite_run.duration_s or 0.0)}
    if builds_kernel(definition_of(suite_run.suite)):
        # Kernel suites compare with the base: tests failing only on the chain.
        data["regressions"] = [{"name": t["name"], "patch": t.get("blame", "")}
                               for t in suite_run.tests if t.get("regression")]
    return data
