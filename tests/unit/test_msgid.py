"""One home for message-id handling: stripping, header values, brackets, archive links."""
import pytest

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
