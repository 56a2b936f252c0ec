"""uffd-kernel on a real kernel: Debian's linux-source-6.1 (scripts/make-kernel-tree).

Two chains of two commits each, the second built on the first, change mm/userfaultfd.c.
The benign chain passes; the other makes UFFDIO_CONTINUE fail, and the minor-fault
tests must fail and be named as regressions against the base. The three kernels share
ccache and the LRU kernel cache under var/kernel-cache, so CI's second pass (and the
later chains) rebuild only what changed.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from untangle import gitrepo
from untangle.suite import UFFD_KERNEL_SUITE, compare_with_base, run_suite

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "var" / "kernel-cache"
UFFD = "mm/userfaultfd.c"
CONTINUE_HEAD = "/* Handles UFFDIO_CONTINUE for all shmem VMAs (shared or private). */\n"

pytestmark = [pytest.mark.slow, pytest.mark.kernel_build]


# Fixed dates: the same commits every run, so a second run (CI's second pass) finds their
# kernels in the cache by commit id.
FIXED_DATES = {"GIT_AUTHOR_DATE": "2025-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2025-01-01T00:00:00Z"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env={**os.environ, **FIXED_DATES}).stdout.strip()


def commit_edit(repo: Path, message: str, old: str, new: str) -> str:
    path = repo / UFFD
    text = path.read_text()
    assert old in text, f"{UFFD} changed upstream: {old!r} not found"
    path.write_text(text.replace(old, new, 1))
    git(repo, "commit", "-qam", message)
    return git(repo, "rev-parse", "HEAD")


def commit_comment(repo: Path) -> str:
    """Series 1: a comment on the CONTINUE path (changes nothing the tests see)."""
    return commit_edit(repo, "mm/userfaultfd: explain mcontinue_atomic_pte", CONTINUE_HEAD,
                       CONTINUE_HEAD + "/* The page must already be in the page cache. */\n")


def commit_refusing_continue(repo: Path) -> str:
    """On top of commit_comment: UFFDIO_CONTINUE fails on every shmem VMA."""
    return commit_edit(
        repo, "mm/userfaultfd: refuse CONTINUE early",
        "\tint ret;\n\n\tret = shmem_get_folio(inode, pgoff, &folio, SGP_NOALLOC);",
        "\tint ret;\n\n\tif (dst_vma->vm_file)  /* every shmem VMA: CONTINUE now always fails */\n"
        "\t\treturn -EINVAL;\n\tret = shmem_get_folio(inode, pgoff, &folio, SGP_NOALLOC);")


@pytest.fixture(scope="module")
def linux61(tmp_path_factory):
    """A clone of the 6.1 tree with the base, a benign chain and a breaking chain."""
    out = subprocess.run([str(ROOT / "scripts" / "make-kernel-tree")], check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    repo = tmp_path_factory.mktemp("linux61") / "linux"
    subprocess.run(["git", "clone", "-q", "--shared", out, str(repo)], check=True)
    for key, value in (("user.name", "Test Author"), ("user.email", "author@example.org")):
        git(repo, "config", key, value)
    base = git(repo, "rev-parse", "HEAD")
    # Series 1 (shared by both chains): a comment on the CONTINUE path.
    first = commit_comment(repo)
    benign = commit_edit(repo, "mm/userfaultfd: note the callers", "/* The page must already",
                         "/* Called for UFFDIO_CONTINUE only. The page must already")
    git(repo, "checkout", "-q", "-b", "broken", first)
    broken = commit_refusing_continue(repo)
    return {"repo": repo, "base": base, "benign": benign, "broken": broken}


def run_at(linux61: dict, name: str, tmp_path: Path) -> dict:
    tree = tmp_path / name
    gitrepo.export_tree(linux61["repo"], linux61[name], tree)
    return run_suite(tree, UFFD_KERNEL_SUITE, Path("/nonexistent"), tmp_path / "work",
                     kernel_cache=CACHE, kernel_key=linux61[name], artifacts_dir=tmp_path / f"art-{name}")


def results(result) -> dict[str, str]:
    return {t.name: t.result for t in result.tests}


@pytest.fixture(scope="module")
def base_result(linux61, tmp_path_factory):
    return run_at(linux61, "base", tmp_path_factory.mktemp("base"))


def test_base_61_kernel_builds_boots_and_passes_its_minor_fault_test(base_result):
    result = base_result
    assert result.status == "pass", result.problems[:5]
    assert [s.name for s in result.steps] == ["kernel", "headers", "build", "pack", "boot"]
    got = results(result)
    assert got["uffd-shmem/minor faults"] == "ok"
    assert got["uffd-anon"] == "ok" and got["uffd-shmem"] == "ok"
    details = {t.name: t.detail for t in result.tests}
    assert got["kvm-guest-memfd"] == "skip" and "guest_memfd_test.c" in details["kvm-guest-memfd"]
    assert got["uffd-unit"] == "skip" and "uffd-unit-tests.c (6.4 and later)" in details["uffd-unit"]
    serial = result.log.partition("--- serial console ---")[2]
    # The tree's own build (fixed KBUILD_BUILD_TIMESTAMP), not a stock distro kernel:
    assert "guest kernel: 6.1." in serial and "2024-01-01" in serial


def test_benign_chain_passes_on_its_own_kernel(linux61, base_result, tmp_path):
    result = run_at(linux61, "benign", tmp_path)
    assert result.status == "pass", result.problems[:5]
    assert (tmp_path / "art-benign" / "bzImage").stat().st_size > 100_000
    assert "CONFIG_USERFAULTFD=y" in (tmp_path / "art-benign" / "config").read_text()
    assert compare_with_base(result.tests, base_result.tests).regressions == ()


def test_chain_breaking_continue_fails_with_the_minor_tests_named_as_regressions(
        linux61, base_result, tmp_path):
    result = run_at(linux61, "broken", tmp_path)
    assert result.status == "fail", result.problems[:5]
    verdict = compare_with_base(result.tests, base_result.tests)
    assert "uffd-shmem/minor faults" in verdict.regressions
    assert "uffd-shmem" in verdict.regressions
    assert "uffd-anon" not in verdict.regressions
    detail = {t.name: t.detail for t in result.tests}["uffd-shmem/minor faults"]
    assert "UFFDIO_CONTINUE" in detail
