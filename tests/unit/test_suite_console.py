from untangle.suite import _Console


def test_serial_log_text_has_no_carriage_returns_whatever_the_firmware_wrote():
    console = _Console("n0nce")
    console.feed(b"Probing EDD (edd=off to disable)... ok\r\r\n\x1b[2J")
    console.feed(b"Booting from ROM...\rok 1 x\r\n[    0.1] kernel\r\n")
    text = console.text()
    assert "\r" not in text and "\x1b" not in text
    assert text.splitlines() == ["Probing EDD (edd=off to disable)... ok", "Booting from ROM...",
                                 "ok 1 x", "[    0.1] kernel"]


def test_guest_that_halts_after_its_end_marker_ends_after_the_grace_not_the_boot_budget(tmp_path):
    # A tinyconfig kernel has no ACPI: the guest halts and QEMU stays up. The reader must
    # bring its deadline forward at the end marker, or the run waits out the whole budget.
    from untangle.suite import _run_qemu
    console = _Console("n0nce")
    guest = ["sh", "-c", "echo REVIEWAPP-BEGIN n0nce; echo REVIEWAPP-END n0nce rc=0; exec sleep 120"]
    outcome = _run_qemu(guest, console, timeout=100, sandbox="unshare", ro=[], grace=0.5)
    assert (outcome, console.end_rc) == ("no-exit", 0)


def test_guest_silent_past_the_budget_is_a_timeout(tmp_path):
    from untangle.suite import _run_qemu
    console = _Console("n0nce")
    outcome = _run_qemu(["sh", "-c", "echo booting; exec sleep 120"], console, timeout=1,
                        sandbox="unshare", ro=[], grace=0.5)
    assert (outcome, console.end_rc) == ("timeout", None)


def _console_with(program: str, output: bytes, rc: int) -> _Console:
    console = _Console("n0nce")
    console.feed(b"REVIEWAPP-PROG n0nce " + program.encode() + b"\n" + output
                 + f"REVIEWAPP-RC n0nce {program} rc={rc}\nREVIEWAPP-END n0nce rc=0\n".encode())
    return console


def test_program_failing_without_any_tap_is_reported_as_giving_no_tap():
    console = _console_with("silent", b"segfault somewhere\n", rc=1)
    (test,) = console.results([{"name": "silent"}])
    assert (test.result, test.detail) == ("not ok", "exit status 1")
    assert console.problems == ["silent: no TAP output found"]


def test_program_passing_without_tap_is_no_problem_its_exit_status_says_it_all():
    console = _console_with("quiet", b"all fine\n", rc=0)
    (test,) = console.results([{"name": "quiet"}])
    assert test.result == "ok" and console.problems == []


def test_failing_program_whose_pre_ktap_output_is_understood_is_no_tap_problem():
    console = _console_with("uffd-shmem", b"testing minor faults: ERROR: UFFDIO_CONTINUE failed\n", rc=1)
    tests = console.results([{"name": "uffd-shmem"}])
    assert [(t.name, t.result) for t in tests] == [("uffd-shmem", "not ok"),
                                                   ("uffd-shmem/minor faults", "not ok")]
    assert console.problems == []


def test_tap_shape_problems_are_still_reported_when_the_program_passed():
    console = _console_with("short", b"1..3\nok 1 a\n", rc=0)
    console.results([{"name": "short"}])
    assert console.problems == ["short: planned 3 tests but 1 ran"]


def test_suite_result_serialises_to_the_stored_shape():
    from untangle.suite import SuiteArtifacts, SuiteResult, SuiteStep, SuiteTest
    result = SuiteResult(status="fail", tests=(SuiteTest("a", "ok", "exit status 0"),
                                               SuiteTest("a/b", "not ok", "x", regression=True, blame="m@id")),
                         problems=("p",), log="L", duration_s=1.5, sandbox="bwrap",
                         steps=(SuiteStep("build", "pass", 0.25),), artifacts=SuiteArtifacts(kvm=False))
    assert result.to_json() == {
        "status": "fail", "problems": ["p"], "log": "L", "duration_s": 1.5, "sandbox": "bwrap",
        "tests": [{"name": "a", "result": "ok", "detail": "exit status 0"},
                  {"name": "a/b", "result": "not ok", "detail": "x", "regression": True, "blame": "m@id"}],
        "steps": [{"name": "build", "status": "pass", "duration_s": 0.25}], "artifacts": {"kvm": False}}
    assert [SuiteTest.from_json(t) for t in result.to_json()["tests"]] == list(result.tests)
