"""untangle.tap.parse on TAP13, KTAP and what a serial console makes of them."""

from untangle.tap import TapTest, parse


def results(parsed: dict) -> list[tuple[str, str]]:
    return [(t.name, t.result) for t in parsed.tests]


def detail(parsed: dict, name: str) -> str:
    return next(t.detail for t in parsed.tests if t.name == name)


def test_simple_stream_gives_plan_results_and_no_problems():
    parsed = parse("TAP version 13\n1..3\nok 1 - first\nnot ok 2 second\nok 3\n")
    assert results(parsed) == [("first", "ok"), ("second", "not ok"), ("test 3", "ok")]
    assert parsed.plan == 3
    assert parsed.problems == () and parsed.bailed_out is False
    assert parsed.version == "TAP13"


def test_plan_at_the_end_is_accepted():
    parsed = parse("ok 1 a\nok 2 b\n1..2\n")
    assert parsed.plan == 2 and parsed.problems == ()


def test_skip_directive_makes_a_skip_with_its_reason():
    parsed = parse("1..2\nok 1 needs hugetlb # SKIP no hugepages\nok 2 other #skip\n")
    assert results(parsed) == [("needs hugetlb", "skip"), ("other", "skip")]
    assert detail(parsed, "needs hugetlb") == "SKIP: no hugepages"


def test_todo_failure_is_not_a_failure_but_keeps_its_reason():
    parsed = parse("1..1\nnot ok 1 flaky thing # TODO fix the race\n")
    assert results(parsed) == [("flaky thing", "ok")]
    assert detail(parsed, "flaky thing") == "TODO: fix the race"


def test_escaped_hash_stays_in_the_name():
    parsed = parse("1..1\nok 1 issue \\#42 fixed\n")
    assert results(parsed) == [("issue #42 fixed", "ok")]


def test_missing_plan_is_reported():
    parsed = parse("TAP version 13\nok 1 a\nnot ok 2 b\n")
    assert parsed.plan is None
    assert any("no plan" in p for p in parsed.problems)
    assert results(parsed) == [("a", "ok"), ("b", "not ok")]


def test_plan_count_mismatch_is_reported():
    parsed = parse("1..4\nok 1 a\nok 2 b\n")
    assert parsed.problems == ("planned 4 tests but 2 ran",)


def test_bail_out_stops_parsing_and_is_reported():
    parsed = parse("1..3\nok 1 a\nBail out! cannot open /dev/userfaultfd\nok 2 b\n")
    assert parsed.bailed_out is True
    assert results(parsed) == [("a", "ok")]
    assert "bailed out: cannot open /dev/userfaultfd" in parsed.problems
    assert not any("planned" in p for p in parsed.problems)


def test_garbage_lines_are_ignored():
    text = "TAP version 13\n1..2\nsegfault? no\nok 1 a\n$ random shell noise\nok 2 b\n  indented junk\n"
    parsed = parse(text)
    assert results(parsed) == [("a", "ok"), ("b", "ok")]
    assert parsed.problems == ()


def test_crlf_line_endings_from_a_serial_console():
    parsed = parse("TAP version 13\r\n1..2\r\n# reason\r\nok 1 a\r\nnot ok 2 b\r\n")
    assert results(parsed) == [("a", "ok"), ("b", "not ok")]
    assert all("\r" not in t.name + t.detail for t in parsed.tests)


def test_interleaved_kernel_log_lines_are_dropped():
    text = ("TAP version 13\n[    1.234567] random: crng init done\n1..2\nok 1 a\n"
            "<6>[    2.000001] userfaultfd: something\n"
            "[    2.5] BUG: not really\nnot ok 2 b\n")
    parsed = parse(text)
    assert results(parsed) == [("a", "ok"), ("b", "not ok")]
    assert parsed.problems == ()
    assert "crng" not in detail(parsed, "a") + detail(parsed, "b")


def test_serial_escape_sequences_and_control_bytes_are_stripped():
    parsed = parse("\x1b[2J\x1bc1..1\n\x00ok 1 a\x07\n")
    assert results(parsed) == [("a", "ok")] and parsed.plan == 1


def test_kselftest_diagnostics_belong_to_the_result_after_them():
    text = "TAP version 13\n1..2\nok 1 first\n# expected 4, got 5\nnot ok 2 second\n# Totals: pass:1\n"
    parsed = parse(text)
    assert detail(parsed, "first") == ""
    assert detail(parsed, "second") == "expected 4, got 5\nTotals: pass:1"


def test_perl_style_diagnostics_belong_to_the_result_before_them():
    parsed = parse("1..2\nnot ok 1 first\n#   Failed test 'first'\nok 2 second\n")
    assert detail(parsed, "first") == "Failed test 'first'"
    assert detail(parsed, "second") == ""


def test_ktap_diagnostics_precede_their_test():
    text = "KTAP version 1\n1..2\n# a_test: pass\nok 1 a_test\n# b_test: EXPECTATION FAILED at x.c:3\nnot ok 2 b_test\n"
    parsed = parse(text)
    assert detail(parsed, "b_test") == "b_test: EXPECTATION FAILED at x.c:3"
    assert parsed.version == "KTAP1"


def test_nested_ktap_subtests_are_flattened_and_parent_kept():
    text = """KTAP version 1
1..2
    KTAP version 1
    # Subtest: uffd
    1..2
    ok 1 missing
    # minor: wrong byte
    not ok 2 minor
# uffd: pass:1 fail:1
not ok 1 uffd
ok 2 other
"""
    parsed = parse(text)
    assert results(parsed) == [("uffd", "not ok"), ("uffd/missing", "ok"),
                               ("uffd/minor", "not ok"), ("other", "ok")]
    assert detail(parsed, "uffd/minor") == "minor: wrong byte"
    assert detail(parsed, "uffd") == "uffd: pass:1 fail:1"
    assert parsed.plan == 2 and parsed.problems == ()


def test_nested_tap13_subtests_two_levels_deep():
    text = """TAP version 13
1..1
    # Subtest: outer
    1..2
        # Subtest: inner
        1..1
        ok 1 leaf
    ok 1 inner
    ok 2 sibling
ok 1 outer
"""
    parsed = parse(text)
    assert results(parsed) == [("outer", "ok"), ("outer/inner", "ok"),
                               ("outer/inner/leaf", "ok"), ("outer/sibling", "ok")]
    assert parsed.problems == ()


def test_subtest_plan_mismatch_is_reported_with_its_name():
    text = "1..1\n    1..3\n    ok 1 a\nok 1 parent\n"
    parsed = parse(text)
    assert parsed.problems == ("subtest 'parent': planned 3 tests but 1 ran",)


def test_subtest_without_parent_result_keeps_its_results():
    text = "1..1\nok 1 a\n    # Subtest: cut short\n    1..2\n    ok 1 x\n"
    parsed = parse(text)
    assert ("cut short/x", "ok") in results(parsed)
    assert any("has no result line" in p for p in parsed.problems)


def test_yaml_block_goes_into_the_detail():
    text = """TAP version 13
1..2
not ok 1 copy
  ---
  message: "UFFDIO_COPY returned EEXIST"
  severity: fail
  ...
ok 2 next
"""
    parsed = parse(text)
    assert results(parsed) == [("copy", "not ok"), ("next", "ok")]
    assert detail(parsed, "copy") == 'message: "UFFDIO_COPY returned EEXIST"\nseverity: fail'
    assert parsed.problems == ()


def test_yaml_lines_that_look_like_tap_do_not_count_as_tests():
    text = "1..1\nok 1 a\n  ---\n  output: |\n    ok 2 fake\n    1..9\n  ...\n"
    parsed = parse(text)
    assert results(parsed) == [("a", "ok")] and parsed.plan == 1
    assert "ok 2 fake" in detail(parsed, "a")


def test_unterminated_yaml_block_is_reported():
    parsed = parse("1..2\nnot ok 1 a\n  ---\n  message: x\nok 2 b\n")
    assert results(parsed) == [("a", "not ok"), ("b", "ok")]
    assert any("not terminated" in p for p in parsed.problems)


def test_duplicate_and_out_of_order_numbers_are_reported():
    parsed = parse("1..3\nok 1 a\nok 3 c\nok 3 again\n")
    assert "test number 3 out of order (expected 2)" in parsed.problems
    assert "test number 3 appears twice" in parsed.problems
    assert len(parsed.tests) == 3


def test_missing_numbers_are_filled_in_sequence():
    parsed = parse("1..2\nok first\nnot ok\n")
    assert results(parsed) == [("first", "ok"), ("test 2", "not ok")]
    assert parsed.problems == ()


def test_skip_all_plan_has_no_problems():
    parsed = parse("TAP version 13\n1..0 # SKIP userfaultfd not available\n")
    assert parsed.plan == 0 and parsed.tests == () and parsed.problems == ()


def test_empty_input_reports_no_tap_as_a_flag_not_a_problem():
    for text in ("", "\r\n\n", "[    0.1] only kernel noise\n", "# only a diagnostic\n"):
        parsed = parse(text)
        assert parsed.tests == () and parsed.plan is None
        assert parsed.found is False and parsed.problems == ()
        assert parsed.problem_lines() == ["no TAP output found"]


def test_a_plan_alone_or_a_bail_out_is_tap_output():
    assert parse("1..0\n").found is True
    bailed = parse("Bail out! no /dev/userfaultfd\n")
    assert bailed.found is True and bailed.problem_lines() == ["bailed out: no /dev/userfaultfd"]


def test_results_serialise_to_the_stored_json_shape():
    (test,) = parse("1..1\nnot ok 1 a # TIMEOUT 30s\n").tests
    assert test.to_json() == {"name": "a", "result": "not ok", "detail": "TIMEOUT: 30s"}
    assert TapTest.from_json(test.to_json()) == test


def test_truncated_stream_from_a_crashed_guest():
    parsed = parse("TAP version 13\n1..3\nok 1 a\n# running b\n[   3.1] Kernel panic - not syncing: x\n")
    assert results(parsed) == [("a", "ok")]
    assert "planned 3 tests but 1 ran" in parsed.problems
