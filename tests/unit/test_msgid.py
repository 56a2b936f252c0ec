"""One home for message-id handling: stripping, header values, brackets, archive links."""
import pytest

from tests.support.msgid_shapes import MID, SHAPES
from untangle import msgid


@pytest.mark.parametrize("text", ["a.1@b.org", "<a.1@b.org>", "  <a.1@b.org> \n", " a.1@b.org "])
def test_bare_strips_whitespace_and_one_pair_of_brackets(text):
    assert msgid.bare(text) == "a.1@b.org"


def test_header_value_takes_the_first_bracketed_id_and_ignores_comments():
    assert msgid.from_header("<x@y.org> (sent from my phone)") == "x@y.org"
    assert msgid.from_header("  x@y.org  ") == "x@y.org"


def test_bracketed_never_doubles_brackets():
    assert msgid.bracketed("x@y") == msgid.bracketed("<x@y>") == "<x@y>"


def test_lore_url_honours_the_archive_base_and_escapes_what_a_path_cannot_hold():
    assert msgid.lore_url("<a/b@c>", "http://127.0.0.1:9/all/") == "http://127.0.0.1:9/all/a%2Fb@c/"
    assert msgid.lore_url("x@y").startswith("https://lore.kernel.org/all/")




def test_header_value_with_an_unclosed_bracket_is_stripped_like_a_bare_one():
    # What untangle.mail's own parser (now this one) did with broken headers.
    assert msgid.from_header("\x0c<x@y.org\x0c") == "x@y.org"
    assert msgid.from_header("") == msgid.from_header(None) == ""


def test_header_value_is_not_percent_decoded_a_percent_is_part_of_a_real_id():
    assert msgid.from_header("<a%40b@c.org>") == "a%40b@c.org"


def test_references_header_gives_every_bracketed_id_in_order():
    assert msgid.all_in_header("<a@b>\n <c@d> junk <e@f>") == ["a@b", "c@d", "e@f"]


@pytest.mark.parametrize("text", SHAPES)
def test_parse_reads_the_id_from_every_shape_a_reference_takes(text):
    assert msgid.parse(text) == MID


def test_parse_keeps_an_escaped_slash_inside_the_id():
    assert msgid.parse("https://lore.kernel.org/all/a%2Fb.c@example.org/T/") == "a/b.c@example.org"


@pytest.mark.parametrize("url", ["https://lore.kernel.org/all/", "https://lore.kernel.org/all/?q=s:uffd",
                                 "https://github.com/firecracker-microvm/firecracker/tree/feature/x",
                                 "https://lore.kernel.org/all/@example.org/"])
def test_url_naming_no_message_gives_nothing(url):
    assert msgid.from_url(url) is None and msgid.parse(url) == ""


def test_url_skips_segments_that_hold_no_id_to_find_the_one_that_does():
    assert msgid.from_url("https://example.org/~@/list/x@y.org/") == "x@y.org"
