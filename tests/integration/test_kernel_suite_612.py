"""uffd-kernel on a 6.4+ tree: Debian's linux-source-6.12 (scripts/make-kernel-tree --source).

Trees from 6.4 on have tools/testing/selftests/mm/uffd-unit-tests, which covers minor faults
on shmem and hugetlb ("Testing minor on hugetlb... done"); the suite builds it and
uffd-stress statically against the tree's own headers and boots the tree's own kernel.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from untangle.suite import UFFD_KERNEL_SUITE, run_suite

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "var" / "kernel-cache"

pytestmark = [pytest.mark.slow, pytest.mark.kernel_build]


@pytest.fixture(scope="module")
def linux612():
    dest = ROOT / "var" / "bench" / "linux-source-6.12"
    out = subprocess.run([str(ROOT / "scripts" / "make-kernel-tree"), "--source", str(dest)],
                         check=True, capture_output=True, text=True,
                         env={**os.environ, "LINUX_SOURCE_PKG": "linux-source-6.12"})
    return Path(out.stdout.strip().splitlines()[-1])


def test_612_kernel_runs_uffd_unit_tests_with_minor_faults_on_shmem_and_hugetlb(linux612, tmp_path):
    result = run_suite(linux612, UFFD_KERNEL_SUITE, Path("/nonexistent"), tmp_path / "work",
                       kernel_cache=CACHE, kernel_key="debian-linux-source-6.12")
    assert result["status"] == "pass", result["problems"][:5]
    got = {t["name"]: t["result"] for t in result["tests"]}
    assert got["uffd-unit"] == "ok"
    for name in ("minor on shmem", "minor on hugetlb", "minor-wp on shmem", "register-ioctls on anon"):
        assert got[f"uffd-unit/{name}"] == "ok", name
    assert got["uffd-anon"] == "ok" and got["uffd-shmem"] == "ok"  # uffd-stress per memory type
    serial = result["log"].partition("--- serial console ---")[2]
    assert "guest kernel: 6.12." in serial and "Userfaults unit tests: pass=" in serial
