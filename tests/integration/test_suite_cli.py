"""`manage.py suite run`: the CLI contract on the demo chains, with real applies and QEMU boots.

The kernel is Debian's 6.1 image from scripts/fetch-kernel; the tree and the mails are
the demo story's (fixtures/demo), loaded by the `demo` fixture.
"""
import json
import subprocess
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from reviewapp.models import ApplyRun, SuiteRun
from reviewapp.services import trees

from .test_suite_runs import kernel_setting  # noqa: F401 (autouse fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

UFFD_V3 = "20250404132740.18342-1-kalyazin@amazon.com"
FASTPATH = "20250410063119.40211-1-lena.brandt@example.org"


def suite_run(capsys, *args) -> tuple[dict, int]:
    """Run the command in-process: (printed JSON, exit status)."""
    code = 0
    try:
        call_command("suite", "run", *args, "--json")
    except CommandError as exc:
        code = exc.returncode
    return json.loads(capsys.readouterr().out), code


def test_good_chain_passes_with_every_fault_test_ok(demo, capsys):
    out, code = suite_run(capsys, UFFD_V3, "--tree", "demo")
    assert (out["status"], code) == ("pass", 0), out["log"][-3000:]
    assert set(out) == {"status", "tests", "log", "duration_s"}
    results = {t["name"]: t["result"] for t in out["tests"]}
    assert results == {"uffd-faults": "ok", "uffd-faults/missing-anon": "ok",
                       "uffd-faults/minor-shmem": "ok"}
    assert all(set(t) == {"name", "result", "detail"} for t in out["tests"])
    assert "--- serial console ---" in out["log"] and "TAP version 13" in out["log"]
    assert 0 < out["duration_s"] < 60


def test_fast_path_chain_fails_naming_minor_shmem(demo, capsys):
    out, code = suite_run(capsys, f"https://lore.kernel.org/kvm/{FASTPATH}/", "--tree", "demo")
    assert (out["status"], code) == ("fail", 2), out["log"][-3000:]
    failed = [t for t in out["tests"] if t["result"] == "not ok"]
    assert [t["name"] for t in failed] == ["uffd-faults", "uffd-faults/minor-shmem"]
    assert "expected 'a'" in failed[1]["detail"]
    assert "failed: minor-shmem" in failed[0]["detail"]
    run = ApplyRun.objects.get(root__msgid=FASTPATH)
    assert len(run.chain) == 3  # mapping v7, uffd minor v3, the fast path


def test_same_chain_again_reuses_the_result_without_booting(demo, capsys):
    first, _ = suite_run(capsys, UFFD_V3, "--tree", "demo")
    started = time.monotonic()
    second, code = suite_run(capsys, UFFD_V3, "--tree", "demo")
    elapsed = time.monotonic() - started
    assert (second, code) == (first, 0)
    assert SuiteRun.objects.count() == 1 and ApplyRun.objects.count() == 2
    assert elapsed < first["duration_s"]  # no second boot


def test_chain_that_does_not_apply_is_an_error_with_the_apply_failure(demo, capsys, tmp_path):
    # A tree holding none of the files the series patch: the apply must fail.
    other = tmp_path / "other"
    subprocess.run(["git", "init", "-q", "-b", "main", str(other)], check=True)
    (other / "README").write_text("unrelated\n")
    subprocess.run(["git", "-C", str(other), "add", "README"], check=True)
    subprocess.run(["git", "-C", str(other), "-c", "user.name=t", "-c", "user.email=t@example.org",
                    "commit", "-q", "-m", "unrelated"], check=True)
    trees.add_tree("unrelated", str(other))
    out, code = suite_run(capsys, UFFD_V3, "--tree", "unrelated")
    assert (out["status"], code, out["tests"]) == ("error", 1, [])
    assert "did not apply onto unrelated" in out["log"]
    run = ApplyRun.objects.get(tree__name="unrelated")
    assert run.status != ApplyRun.APPLIED and (run.error or str(run.failed)) in out["log"]
    assert SuiteRun.objects.count() == 0


def test_unknown_tree_and_suite_are_refused(demo, capsys):
    with pytest.raises(CommandError, match="no tree named 'nope'"):
        call_command("suite", "run", UFFD_V3, "--tree", "nope", "--json")
    with pytest.raises(CommandError, match="no suite named 'nope'"):
        call_command("suite", "run", UFFD_V3, "--tree", "demo", "--suite", "nope", "--json")
    assert capsys.readouterr().out == ""
