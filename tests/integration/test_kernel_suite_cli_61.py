"""`manage.py suite run MSGID --tree NAME --suite uffd-kernel --json` end to end on a real kernel.

Two series are posted as mails (git format-patch of commits on Debian's linux-source-6.1,
scripts/make-kernel-tree): the first comments mm/userfaultfd.c, the second, "Based-on:" the
first, makes UFFDIO_CONTINUE fail on every shmem VMA. The CLI resolves the chain from the
mails, applies both onto the registered tree, builds the chain's kernel and the tree's
selftests, boots them, runs the base too and names the minor-fault tests as regressions of
the second series' patch. Kernels share var/kernel-cache with test_kernel_suite_61.py.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reviewapp.models import ApplyRun
from reviewapp.services import ingest, trees

from .test_kernel_suite_61 import ROOT, commit_comment, commit_refusing_continue, git
from .test_suite_cli import suite_run

pytestmark = [pytest.mark.django_db, pytest.mark.slow, pytest.mark.kernel_build]

FIRST = "kernel61-comment-1@example.org"
BROKEN = "kernel61-refuse-1@example.org"


def as_mail(repo: Path, commit: str, msgid: str, notes: str = "") -> bytes:
    """The commit as a posted patch: format-patch output with our Message-Id and list."""
    text = git(repo, "format-patch", "--stdout", "-1", commit, "--subject-prefix=PATCH")
    head, sep, body = text.partition("\n\n")
    head += f"\nMessage-Id: <{msgid}>\nTo: linux-mm@kvack.org"
    if notes:
        message, cut, diff = body.partition("\n---\n")
        body = f"{message}{cut}{notes}\n{diff}"
    return (head + sep + body).encode()


@pytest.fixture
def posted_chain(tmp_path):
    """The base tree registered; two series on it stored as if they came from the list."""
    bare = subprocess.run([str(ROOT / "scripts" / "make-kernel-tree")], check=True,
                          capture_output=True, text=True).stdout.strip().splitlines()[-1]
    work = tmp_path / "linux"
    subprocess.run(["git", "clone", "-q", "--shared", bare, str(work)], check=True)
    for key, value in (("user.name", "Test Author"), ("user.email", "author@example.org")):
        git(work, "config", key, value)
    first = commit_comment(work)
    broken = commit_refusing_continue(work)
    result = ingest.ingest([as_mail(work, first, FIRST),
                            as_mail(work, broken, BROKEN, notes=f"Based-on: <{FIRST}>\n")],
                           list_name="linux-mm")
    assert result.stored == 2, result
    trees.add_tree("linux61", bare)
    return {"base": git(work, "rev-parse", "HEAD~2")}


def test_cli_builds_the_chains_kernel_and_names_the_minor_tests_as_its_regressions(
        posted_chain, capsys):
    out, code = suite_run(capsys, BROKEN, "--tree", "linux61", "--suite", "uffd-kernel")
    assert (out["status"], code) == ("fail", 2), out["log"][-3000:]
    run = ApplyRun.objects.get(root__msgid=BROKEN)
    assert run.base == posted_chain["base"]
    assert [entry["msgid"] for entry in run.applied] == [FIRST, BROKEN]  # the chain, in order
    results = {t["name"]: t["result"] for t in out["tests"]}
    assert results["uffd-shmem/minor faults"] == "not ok"
    assert results["uffd-anon"] == "ok"  # anonymous memory never takes the CONTINUE path
    regressions = {r["name"]: r["patch"] for r in out["regressions"]}
    assert regressions.get("uffd-shmem/minor faults") == BROKEN
    assert "uffd-anon" not in regressions
    serial = out["log"].partition("--- serial console ---")[2]
    # The chain's own build (fixed KBUILD_BUILD_TIMESTAMP), not a stock distro kernel:
    assert "guest kernel: 6.1." in serial and "2024-01-01" in serial
    assert "testing minor faults" in serial
