"""The uffd-kernel suite's plain-Python parts: definition, config fragment, LRU cache,
6.1's pre-KTAP userfaultfd output, regressions against the base."""
import os
from pathlib import Path

from untangle import kbuild
from untangle.suite import (UFFD_KERNEL_SUITE, BaseComparison, SuiteTest, compare_with_base, legacy_tests,
                           validate_suite)


def test_builtin_kernel_suite_is_valid_and_its_fragment_asks_for_what_boot_and_uffd_need():
    assert validate_suite(UFFD_KERNEL_SUITE) == []
    wanted = kbuild.wanted_options(kbuild.fragment_text(UFFD_KERNEL_SUITE["kernel"]))
    for option in ("CONFIG_64BIT", "CONFIG_SERIAL_8250_CONSOLE", "CONFIG_BLK_DEV_INITRD",
                   "CONFIG_DEVTMPFS", "CONFIG_PROC_FS", "CONFIG_SYSFS", "CONFIG_TMPFS",
                   "CONFIG_SHMEM", "CONFIG_USERFAULTFD", "CONFIG_HUGETLBFS", "CONFIG_MEMFD_CREATE"):
        assert wanted[option] == "y", option


def test_kernel_section_rejects_unknown_fragments_and_malformed_options():
    suite = {**UFFD_KERNEL_SUITE, "kernel": {"source": "tree", "fragment": "../etc/passwd",
                                             "options": ["CONFIG_KVM=y", "rm -rf /"], "jobs": 0}}
    errors = validate_suite(suite)
    assert any(e.startswith("kernel.fragment") for e in errors)
    assert any(e.startswith("kernel.options") for e in errors)
    assert any(e.startswith("kernel.jobs") for e in errors)
    assert validate_suite({**UFFD_KERNEL_SUITE, "kernel": {"source": "stock"}}) == [
        'kernel.source: "fixed" or "tree"']


def test_kernel_cache_evicts_least_recently_used_entries_beyond_its_bound(tmp_path):
    images = tmp_path / "images"
    for age, name in enumerate(["old", "middle", "new"]):
        entry = images / name
        entry.mkdir(parents=True)
        (entry / "bzImage").write_bytes(b"x" * 1000)
        os.utime(entry, (1_000_000 + age, 1_000_000 + age))
    os.utime(images / "old", (2_000_000, 2_000_000))  # used again: now the newest
    assert kbuild.evict(images, bound_bytes=2000) == ["middle"]
    assert sorted(p.name for p in images.iterdir()) == ["new", "old"]
    assert kbuild.evict(images, bound_bytes=2000) == []


OUTPUT_61 = """nr_pages: 4096, nr_pages_per_cpu: 4096
bounces: 15, mode: rnd racing ver poll, userfaults: 312 missing (312)
testing UFFDIO_ZEROPAGE: done.
testing signal delivery: done.
testing events (fork, remap, remove): userfaults: 4096 missing (4096)
testing minor faults: ERROR: UFFDIO_CONTINUE failed (errno=22, line=1311)
""".splitlines()


def test_61_userfaultfd_output_names_the_test_it_died_in():
    tests = legacy_tests(OUTPUT_61, rc=1)
    assert [(t.name, t.result) for t in tests] == [
        ("UFFDIO_ZEROPAGE", "ok"), ("signal delivery", "ok"),
        ("events (fork, remap, remove)", "ok"), ("minor faults", "not ok")]
    assert "UFFDIO_CONTINUE failed" in tests[-1].detail
    assert all(t.result == "ok" for t in legacy_tests(OUTPUT_61[:-1], rc=0))


def test_failures_passing_on_the_base_are_regressions_and_failing_there_pre_existing():
    chain = [SuiteTest("uffd-shmem", "not ok"), SuiteTest("uffd-shmem/minor faults", "not ok"),
             SuiteTest("uffd-anon", "not ok"), SuiteTest("uffd-anon/x", "ok")]
    base = [SuiteTest("uffd-shmem", "ok"), SuiteTest("uffd-shmem/minor faults", "ok"),
            SuiteTest("uffd-anon", "not ok")]
    assert compare_with_base(chain, base) == BaseComparison(
        regressions=("uffd-shmem", "uffd-shmem/minor faults"), pre_existing=("uffd-anon",))


def test_guest_memfd_program_is_reported_skipped_with_its_reason():
    from untangle.suite import _Console
    console = _Console("n0nce")
    console.feed(b"REVIEWAPP-PROG n0nce kvm-guest-memfd\n"
                 b"# SKIP this tree has no tools/testing/selftests/kvm/guest_memfd_test.c\n"
                 b"REVIEWAPP-RC n0nce kvm-guest-memfd rc=4\nREVIEWAPP-END n0nce rc=0\n")
    (test,) = console.results([{"name": "kvm-guest-memfd"}])
    assert test.result == "skip"
    assert test.detail.endswith(": this tree has no tools/testing/selftests/kvm/guest_memfd_test.c")


OUTPUT_UNIT = """Testing UFFDIO_API (with syscall)... done
Testing register-ioctls on anon... done
Testing sigbus on shmem... userfaults: 1
done
Testing minor on shmem... failed [reason: UFFDIO_CONTINUE failed: Invalid argument]
Testing minor on hugetlb... skipped [reason: memory allocation failed]
Testing minor-wp on shmem... ERROR: UFFDIO_CONTINUE (errno=22, @uffd-unit-tests.c:610)
""".splitlines()


def test_uffd_unit_tests_output_gives_one_subtest_per_test_and_memory_type():
    tests = legacy_tests(OUTPUT_UNIT, rc=1)
    assert [(t.name, t.result) for t in tests] == [
        ("UFFDIO_API (with syscall)", "ok"), ("register-ioctls on anon", "ok"),
        ("sigbus on shmem", "ok"), ("minor on shmem", "not ok"), ("minor on hugetlb", "skip"),
        ("minor-wp on shmem", "not ok")]
    assert tests[3].detail == "UFFDIO_CONTINUE failed: Invalid argument"
    assert tests[4].detail == "memory allocation failed"
    assert tests[5].detail.startswith("ERROR: UFFDIO_CONTINUE")  # the program died in it


def test_kernel_suite_runs_uffd_unit_tests_where_the_tree_has_them():
    names = [p["name"] for p in UFFD_KERNEL_SUITE["steps"]["run"]["programs"]]
    assert names == ["uffd-anon", "uffd-shmem", "uffd-unit", "kvm-guest-memfd"]
    script = UFFD_KERNEL_SUITE["steps"]["build"]["command"]
    assert "mm/uffd-unit-tests.c" in script and "thp_settings.c" in script
    assert "hugepages=" in UFFD_KERNEL_SUITE["steps"]["boot"]["append"]


def test_kernel_asked_for_kvm_gets_the_kvm_fragment_and_an_svm_cpu():
    from untangle.suite import UFFD_KVM_KERNEL_SUITE, _qemu_argv
    assert validate_suite(UFFD_KVM_KERNEL_SUITE) == []
    assert kbuild.validate({"source": "tree", "kvm": "yes"}) == ["kernel.kvm: true or false"]
    with_kvm = kbuild.fragment_text(UFFD_KVM_KERNEL_SUITE["kernel"])
    without = kbuild.fragment_text(UFFD_KERNEL_SUITE["kernel"])
    assert "CONFIG_KVM_AMD=y" in with_kvm and "CONFIG_KVM_SW_PROTECTED_VM=y" in with_kvm
    assert "CONFIG_KVM" not in without  # a different fragment: a different cached kernel
    argv = _qemu_argv(Path("bz"), Path("rd"), {}, cpu="max")
    assert argv[argv.index("-cpu") + 1] == "max" and "-cpu" not in _qemu_argv(Path("bz"), Path("rd"), {})
