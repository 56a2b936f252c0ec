"""The suite sandbox fails closed (issue 13, point 2).

Without a working bubblewrap nothing of the tree is built or booted: the run ends as
"error" naming the reason. Only the explicit REVIEWAPP_SUITE_ALLOW_WEAK_SANDBOX
setting accepts `unshare -rn`. A build never copies a host file into its log.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from reviewapp.models import ApplyRun, Revision
from reviewapp.services import apply, suites
from untangle.sandbox import WEAK_SANDBOX_SETTING
from untangle.suite import run_suite, sandbox_kind

UFFD_V3 = "20250404132740.18342-1-kalyazin@amazon.com"


def command_suite(command: str) -> dict:
    return {"name": "probe", "steps": {
        "build": {"command": command, "timeout_s": 60},
        "boot": {"timeout_s": 30},
        "run": {"programs": ["probe"]}}}


def tree_and_kernel(tmp_path: Path) -> tuple[Path, Path]:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "README").write_text("a tree\n")
    kernel = tmp_path / "vmlinuz"  # never booted by these tests: the build step decides
    kernel.write_bytes(b"not a kernel")
    return tree, kernel


def test_without_bubblewrap_nothing_is_built_and_the_run_is_an_error_naming_why(tmp_path):
    tree, kernel = tree_and_kernel(tmp_path)
    marker = tmp_path / "work" / "built"
    suite = command_suite(f'touch "{marker}"; printf x > "$OUT/probe"')
    result = run_suite(tree, suite, kernel, tmp_path / "work", bwrap=str(tmp_path / "no-bwrap"))
    assert result.status == "error"
    assert result.sandbox is None
    assert not marker.exists(), "the build ran without its sandbox"
    assert [s.status for s in result.steps] == ["skipped", "skipped", "skipped"]
    problem = result.problems[0]
    assert "bubblewrap" in problem and "not building" in problem and WEAK_SANDBOX_SETTING in problem


def test_unshare_only_with_the_explicit_weak_sandbox_setting(tmp_path):
    tree, kernel = tree_and_kernel(tmp_path)
    suite = command_suite('printf x > "$OUT/probe"')
    result = run_suite(tree, suite, kernel, tmp_path / "work", bwrap=str(tmp_path / "no-bwrap"),
                       allow_weak_sandbox=True)
    assert result.sandbox == "unshare"
    assert (result.steps[0].name, result.steps[0].status) == ("build", "pass")
    assert sandbox_kind(str(tmp_path / "no-bwrap")) is None


def test_build_log_never_holds_bytes_of_host_files(tmp_path):
    assert sandbox_kind() == "bwrap", "bubblewrap must work on the test machine"
    tree, kernel = tree_and_kernel(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE\n")
    suite = command_suite(f'cat "{secret}" /etc/shadow /etc/hostname /root/.bash_history; '
                          'ls /home /var; printf x > "$OUT/probe"')
    result = run_suite(tree, suite, kernel, tmp_path / "work")
    assert result.sandbox == "bwrap"
    assert "TOP-SECRET-VALUE" not in result.log
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else ""
    if hostname:
        assert hostname not in result.log
    assert result.log.count("No such file or directory") >= 4


@pytest.mark.django_db
def test_suite_run_without_bubblewrap_is_recorded_as_error_with_the_reason(demo, settings, tmp_path):
    settings.SUITE_BWRAP = str(tmp_path / "no-bwrap")
    settings.KERNEL_IMAGE = str(tree_and_kernel(tmp_path)[1])
    run = apply.apply(Revision.objects.get(msgid=UFFD_V3), demo)
    assert run.status == ApplyRun.APPLIED, run.error
    suite_run = suites.run(run, suites.ensure_default_suite())
    assert suite_run.status == "error"
    assert any("bubblewrap" in p and "not building" in p for p in suites.problems(suite_run))
    assert "sandbox: none" in suite_run.log
