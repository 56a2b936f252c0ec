"""Real boots: compile small C programs from a tree, boot Debian's 6.1 kernel in QEMU (TCG).

The kernel comes from scripts/fetch-kernel (downloaded once, reused). Each test builds
a throwaway "tree" holding one or two programs from tests/support/guest_programs/
under tools/testing/selftests/mm/, the way a patch series would add them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from untangle import suite as suite_mod
from untangle.suite import DEFAULT_SUITE, SuiteResult, SuiteTest, run_suite, validate_suite

REPO = Path(__file__).resolve().parents[2]
PROGRAMS = REPO / "tests" / "support" / "guest_programs"
SELFTESTS = "tools/testing/selftests/mm"

pytestmark = pytest.mark.slow


def make_tree(root: Path, programs: dict[str, str]) -> Path:
    """A tree with each guest program copied to tools/testing/selftests/mm/<name>.c."""
    tree = root / "tree"
    (tree / SELFTESTS).mkdir(parents=True)
    for name, source in programs.items():
        shutil.copy(PROGRAMS / source, tree / SELFTESTS / f"{name}.c")
    return tree


def make_suite(names: list[str], boot_timeout: int = 60, run_timeout: int = 30) -> dict:
    suite = {
        "name": "guest-programs",
        "paths": [f"{SELFTESTS}/"],
        "steps": {
            "build": {"programs": [{"name": n, "sources": [f"{SELFTESTS}/{n}.c"]} for n in names],
                      "cflags": ["-static", "-O2", "-pthread", "-Wall"], "timeout_s": 120},
            "boot": {"timeout_s": boot_timeout, "memory_mb": 256, "append": "loglevel=5"},
            "run": {"programs": [{"name": n, "timeout_s": run_timeout} for n in names]},
        },
    }
    assert validate_suite(suite) == []
    return suite


def by_name(result: SuiteResult) -> dict[str, SuiteTest]:
    return {t.name: t for t in result.tests}


def test_passing_tap_program_passes_with_its_subtests(tmp_path, kernel):
    tree = make_tree(tmp_path, {"tap-pass": "tap_pass.c"})
    seen = []
    result = run_suite(tree, make_suite(["tap-pass"]), kernel, tmp_path / "work",
                       progress=lambda step, status: seen.append((step, status)))
    assert result.status == "pass", result.log[-3000:]
    tests = by_name(result)
    assert tests["tap-pass"].result == "ok"
    assert tests["tap-pass/addition works"].result == "ok"
    assert tests["tap-pass/addition works"].detail == "checking arithmetic"
    assert [s.name for s in result.steps] == ["build", "pack", "boot"]
    assert all(s.status == "pass" for s in result.steps)
    assert ("boot", "running") in seen and ("boot", "pass") in seen
    assert result.sandbox == "bwrap"
    assert "--- serial console ---" in result.log and "\r" not in result.log
    assert not list((tmp_path / "work").iterdir()), "scratch dir must be removed"


def test_not_ok_line_fails_the_run_and_names_the_test(tmp_path, kernel):
    tree = make_tree(tmp_path, {"tap-pass": "tap_pass.c", "tap-fail": "tap_fail.c"})
    result = run_suite(tree, make_suite(["tap-fail", "tap-pass"]), kernel, tmp_path / "work")
    assert result.status == "fail", result.log[-3000:]
    tests = by_name(result)
    assert tests["tap-fail/second_check"].result == "not ok"
    assert "expected 4, got 5" in tests["tap-fail/second_check"].detail
    assert tests["tap-fail"].result == "not ok"
    assert "second_check" in tests["tap-fail"].detail
    # The run goes on after a failing program.
    assert tests["tap-pass"].result == "ok"


def test_guest_kernel_panic_ends_as_crashed_with_the_panic_in_the_log(tmp_path, kernel):
    tree = make_tree(tmp_path, {"panic": "panic.c", "tap-pass": "tap_pass.c"})
    result = run_suite(tree, make_suite(["panic", "tap-pass"]), kernel, tmp_path / "work")
    assert result.status == "crashed", result.log[-3000:]
    assert "Kernel panic - not syncing" in result.log
    assert "about to crash the kernel" in result.log  # output before the crash is kept
    tests = by_name(result)
    assert tests["panic"].result == "not ok"
    assert "Kernel panic" in tests["panic"].detail
    assert tests["tap-pass"].result == "skip"  # never reached
    assert any("Kernel panic" in p for p in result.problems)
    assert result.duration_s < 60, "panic=-1 and -no-reboot must end QEMU at once"


def test_guest_that_stops_without_the_end_marker_is_crashed(tmp_path, kernel):
    # QEMU exits 0 after a power-off; only the missing end marker tells it went wrong.
    tree = make_tree(tmp_path, {"poweroff": "poweroff.c"})
    result = run_suite(tree, make_suite(["poweroff"]), kernel, tmp_path / "work")
    assert result.status == "crashed", result.log[-3000:]
    assert "powering off under the runner's feet" in result.log
    assert by_name(result)["poweroff"].result == "not ok"


def test_hanging_guest_ends_as_timeout_and_qemu_is_killed(tmp_path, kernel):
    tree = make_tree(tmp_path, {"hang": "hang.c"})
    # The in-guest per-program timeout is longer than the boot budget: the boot limit acts.
    result = run_suite(tree, make_suite(["hang"], boot_timeout=12, run_timeout=600),
                       kernel, tmp_path / "work")
    assert result.status == "timeout", result.log[-3000:]
    assert "waiting forever" in result.log
    assert 12 <= result.steps[-1].duration_s < 30
    assert by_name(result)["hang"].result == "not ok"


def test_program_killed_by_in_guest_timeout_fails_but_run_completes(tmp_path, kernel):
    tree = make_tree(tmp_path, {"hang": "hang.c", "tap-pass": "tap_pass.c"})
    result = run_suite(tree, make_suite(["hang", "tap-pass"], boot_timeout=60, run_timeout=3),
                       kernel, tmp_path / "work")
    assert result.status == "fail", result.log[-3000:]
    tests = by_name(result)
    assert tests["hang"].result == "not ok" and "137" in tests["hang"].detail
    assert tests["tap-pass"].result == "ok"


def test_build_error_ends_as_error_with_compiler_output(tmp_path, kernel):
    tree = make_tree(tmp_path, {"broken": "broken.c"})
    result = run_suite(tree, make_suite(["broken"]), kernel, tmp_path / "work")
    assert result.status == "error"
    assert "undeclared_variable" in result.log and "error:" in result.log
    assert [(s.name, s.status) for s in result.steps] == [
        ("build", "error"), ("pack", "skipped"), ("boot", "skipped")]
    assert result.tests == ()
    assert "broken.c" in result.problems[0] and "error" in result.problems[0]


def test_build_cannot_read_host_files_outside_the_toolchain(tmp_path, kernel):
    assert suite_mod.sandbox_kind() == "bwrap", "the sandbox fails closed: bubblewrap must run"
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE\n")
    tree = tmp_path / "tree"
    (tree / SELFTESTS).mkdir(parents=True)
    (tree / SELFTESTS / "peek.c").write_text(f'#include "{secret}"\nint main(void) {{ return 0; }}\n')
    result = run_suite(tree, make_suite(["peek"]), kernel, tmp_path / "work")
    assert result.status == "error"
    assert "TOP-SECRET-VALUE" not in result.log
    assert "No such file or directory" in result.log


def test_build_cannot_write_into_the_tree(tmp_path, kernel):
    tree = make_tree(tmp_path, {"tap-pass": "tap_pass.c"})
    suite = make_suite(["tap-pass"])
    build = suite["steps"]["build"]
    del build["programs"]
    build["command"] = (f'touch "$SRC/{SELFTESTS}/pwned" || true; '
                        f'gcc -static -o "$OUT/tap-pass" "$SRC/{SELFTESTS}/tap-pass.c"')
    result = run_suite(tree, suite, kernel, tmp_path / "work")
    if result.sandbox == "bwrap":
        assert not (tree / SELFTESTS / "pwned").exists()
    assert result.status == "pass", result.log[-3000:]


def test_userfaultfd_missing_and_minor_faults_work_in_the_guest(tmp_path, kernel):
    tree = make_tree(tmp_path, {"uffd-faults": "uffd_faults.c"})
    result = run_suite(tree, make_suite(["uffd-faults"]), kernel, tmp_path / "work")
    assert result.status == "pass", result.log[-3000:]
    tests = by_name(result)
    assert tests["uffd-faults/missing_anon_copy"].result == "ok"
    assert tests["uffd-faults/minor_shmem_continue"].result == "ok"


def test_default_suite_runs_the_tree_uffd_faults_selftest(tmp_path, kernel):
    # Stands in for the demo tree: our uffd program at the path DEFAULT_SUITE builds.
    tree = make_tree(tmp_path, {"uffd-faults": "uffd_faults.c"})
    result = run_suite(tree, DEFAULT_SUITE, kernel, tmp_path / "work")
    assert result.status == "pass", result.log[-3000:]
    assert by_name(result)["uffd-faults"].result == "ok"


def test_tree_without_the_selftest_source_is_an_error(tmp_path, kernel):
    tree = tmp_path / "tree"
    tree.mkdir()
    result = run_suite(tree, DEFAULT_SUITE, kernel, tmp_path / "work")
    assert result.status == "error"
    assert "uffd-faults.c" in result.log


def test_default_suite_is_valid_and_broken_suites_are_explained():
    assert validate_suite(DEFAULT_SUITE) == []
    broken = {"name": "x", "steps": {
        "build": {"programs": [{"name": "a b", "sources": ["/etc/passwd"]}], "timeout_s": -1},
        "boot": {"memory_mb": "lots"},
        "run": {"programs": ["missing", 3]}}}
    errors = validate_suite(broken)
    assert "build.timeout_s: positive number" in errors
    assert "build.programs[0].name: letters, digits, ._+- only" in errors
    assert "boot.memory_mb: positive number" in errors
    assert "run.programs[0]: 'missing' is not built" in errors
    assert any(e.startswith("run.programs[1]") for e in errors)
    both = {"name": "x", "steps": {"build": {"programs": [{"name": "a", "sources": ["a.c"]}],
                                             "command": "make"}, "run": {"programs": ["a"]}}}
    assert "build: give exactly one of programs or command" in validate_suite(both)
    escaping = {"name": "x", "steps": {"build": {"programs": [{"name": "a", "sources": ["../a.c"]}]},
                                       "run": {"programs": ["a"]}}}
    assert "build.programs[0].sources: relative paths inside the tree" in validate_suite(escaping)


def test_invalid_suite_is_an_error_without_building(tmp_path):
    result = run_suite(tmp_path, {"name": "x", "steps": {}}, tmp_path / "vmlinuz", tmp_path / "work")
    assert result.status == "error"
    assert list(result.problems) == ["suite: build: give exactly one of programs or command",
                                        "suite: run.programs: at least one program"]
    assert all(s.status == "skipped" for s in result.steps)


def test_program_arguments_reach_the_guest_quoted(tmp_path, kernel):
    tree = tmp_path / "tree"
    (tree / SELFTESTS).mkdir(parents=True)
    (tree / SELFTESTS / "args.c").write_text(
        '#include <stdio.h>\n#include <string.h>\n'
        'int main(int c, char **v) { int ok = c == 3 && !strcmp(v[1], "two words") && '
        '!strcmp(v[2], "$HOME;x"); printf("1..1\\n%sok 1 args\\n", ok ? "" : "not "); '
        'return !ok; }\n')
    suite = make_suite(["args"])
    suite["steps"]["run"]["programs"][0]["args"] = ["two words", "$HOME;x"]
    result = run_suite(tree, suite, kernel, tmp_path / "work")
    assert result.status == "pass", result.log[-3000:]


def test_program_may_exec_a_helper_the_build_wrote_beside_it(tmp_path, kernel):
    # The 6.1 uffd selftest runs as wrappers (uffd-shmem -> /tests/userfaultfd shmem): every
    # file the build writes must reach the guest, not only the listed programs.
    tree = make_tree(tmp_path, {"helper": "tap_pass.c"})
    suite = make_suite(["wrapper"])
    suite["steps"]["build"] = {
        "command": f'gcc -static -O2 -o "$OUT/bin/helper" "$SRC/{SELFTESTS}/helper.c" || exit 1\n'
                   'printf \'#!/bin/sh\\nexec /tests/bin/helper "$@"\\n\' > "$OUT/wrapper"\n'
                   'chmod +x "$OUT/wrapper"\n',
        "timeout_s": 120}
    suite["steps"]["build"]["command"] = 'mkdir -p "$OUT/bin"\n' + suite["steps"]["build"]["command"]
    assert validate_suite(suite) == []
    result = run_suite(tree, suite, kernel, tmp_path / "work")
    assert result.status == "pass", result.log[-3000:]
    assert by_name(result)["wrapper"].result == "ok"
    assert any(name.startswith("wrapper/") for name in by_name(result))  # the helper's TAP
