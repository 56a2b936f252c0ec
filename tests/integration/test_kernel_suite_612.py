"""uffd-kernel on a 6.4+ tree: Debian's linux-source-6.12 (scripts/make-kernel-tree --source).

Trees from 6.4 on have tools/testing/selftests/mm/uffd-unit-tests, which covers minor faults
on shmem and hugetlb ("Testing minor on hugetlb... done"); the suite builds it and
uffd-stress statically against the tree's own headers and boots the tree's own kernel.
The KVM variant (uffd-kvm-kernel) builds KVM into that kernel and the tree's
tools/testing/selftests/kvm/guest_memfd_test, which runs in the guest on TCG's emulated SVM.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from untangle.suite import UFFD_KVM_KERNEL_SUITE, run_suite

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


def test_612_kvm_kernel_runs_uffd_unit_tests_and_guest_memfd_test(linux612, tmp_path):
    result = run_suite(linux612, UFFD_KVM_KERNEL_SUITE, Path("/nonexistent"), tmp_path / "work",
                       kernel_cache=CACHE, kernel_key="debian-linux-source-6.12",
                       artifacts_dir=tmp_path / "art")
    assert result.status == "pass", result.problems[:5]
    got = {t.name: t.result for t in result.tests}
    assert got["uffd-unit"] == "ok"
    for name in ("minor on shmem", "minor on hugetlb", "minor-wp on shmem", "register-ioctls on anon"):
        assert got[f"uffd-unit/{name}"] == "ok", name
    assert got["uffd-anon"] == "ok" and got["uffd-shmem"] == "ok"  # uffd-stress per memory type
    # guest_memfd_test ran against the guest's own /dev/kvm (exit 0), not a skip:
    assert got["kvm-guest-memfd"] == "ok", {t.name: t.detail for t in result.tests}
    assert "CONFIG_KVM_SW_PROTECTED_VM=y" in (tmp_path / "art" / "config").read_text()
    serial = result.log.partition("--- serial console ---")[2]
    assert "guest kernel: 6.12." in serial and "Userfaults unit tests: pass=" in serial
