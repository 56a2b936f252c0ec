"""Parsing a stream of mails in child processes, and the fast address path."""
import os
from email.utils import parseaddr
from pathlib import Path

import pytest

from untangle import deps, mail, mbox

from tests.support.shared import LORE, require


def _raws():
    return [r for f in sorted(require(LORE).glob("*.mbox")) for r in mbox.messages_from_path(f)]


def _plain(item):
    if isinstance(item, mail.MailError):
        return ("error", str(item))
    if isinstance(item, tuple):
        return _plain(item[0]) + ([e.to_dict() for e in item[1]] if item[1] is not None else None,)
    return ("mail", item.to_dict())


def _my_children() -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                found.add(int(entry))
    return found


def test_parsing_in_child_processes_gives_the_same_mails_in_the_same_order():
    raws = _raws()
    raws.insert(5, b"Subject: no id\n\nbody\n")
    inline = [_plain(m) for m in mail.parse_stream(raws, workers=0)]
    children = [_plain(m) for m in mail.parse_stream(raws, workers=2, chunk=3, window=2)]
    assert children == inline
    assert inline[5][0] == "error" and "Message-ID" in inline[5][1]
    assert sum(1 for kind, _ in inline if kind == "mail") == len(raws) - 1


def test_edges_of_covers_are_read_by_the_children_and_patches_are_left_alone():
    raws = list(mbox.messages_from_path(require(LORE / "kvm-gmem-uffd-minor-v3.mbox")))
    items = list(mail.parse_stream(raws, workers=1, chunk=2, edges=True))
    cover, cover_edges = items[0]
    assert cover.kind == mail.COVER
    assert [e.to_dict() for e in cover_edges] == [
        e.to_dict() for e in deps.discover_text_edges(cover.msgid, cover.body)]
    assert any(e.kind == "previous-revision" for e in cover_edges)
    assert all(m.kind == mail.PATCH and edges is None for m, edges in items[1:])


def test_an_error_reading_the_input_surfaces_after_the_mails_before_it():
    raws = _raws()[:7]

    def broken():
        yield from raws
        raise mbox.MboxError("archive.mbox: unreadable (truncated)")

    got = []
    with pytest.raises(mbox.MboxError, match="truncated"):
        for item in mail.parse_stream(broken(), workers=2, chunk=2):
            got.append(item.msgid)
    assert got == [mail.parse(r).msgid for r in raws]


def test_stopping_early_leaves_no_parser_process_behind():
    before = _my_children()
    stream = mail.parse_stream(_raws() * 3, workers=2, chunk=4, window=2)
    first = next(stream)
    assert first.msgid and len(_my_children() - before) == 2
    stream.close()
    assert _my_children() - before == set()


@pytest.mark.parametrize("value", [
    "Ann Dev <ann@example.org>", "ann@example.org", "<ann@example.org>",
    '"Roy, Patrick" <roypat@amazon.co.uk>', '"Mike Rapoport (Microsoft)" <rppt@kernel.org>',
    "Mike Rapoport (Microsoft) <rppt@kernel.org>", "José Ünal <j.u@example.org>",
    "Ann Dev<ann@example.org>", "A. Person <a@b.c>", "Ann <a..b@example.org>",
    "ann@example.org (Ann Dev)", "Patrick Roy <patrick.roy@linux.dev>=0A=", "", "Ann Dev",
    '"" <a@b.c>', '"Doe \\"JD\\" John" <a@b.c>', "undisclosed-recipients:;",
])
def test_from_values_parse_like_the_standard_library(value):
    assert mail.parse_address(value) == parseaddr(value)
