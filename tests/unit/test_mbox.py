import gzip
import io

import pytest

from untangle import mbox
from untangle.mbox import MboxError, messages_from_path

MAIL = b"From: a@b.c\nSubject: s%d\nMessage-ID: <m%d@x>\n\nbody\n>From here\n>>From there\nFrom the start\n"


def _mboxrd(n):
    return b"".join(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" + (MAIL % (i, i)) + b"\n" for i in range(n))


def test_mboxrd_messages_are_split_and_unquoted(tmp_path):
    path = tmp_path / "t.mbox"
    path.write_bytes(_mboxrd(3))
    msgs = list(messages_from_path(path))
    assert len(msgs) == 3
    assert b"\nFrom here\n>From there\n" in msgs[0]


def test_body_line_starting_with_from_does_not_split_a_message(tmp_path):
    path = tmp_path / "t.mbox"
    path.write_bytes(_mboxrd(2))
    assert all(b"From the start" in m for m in messages_from_path(path))


def test_gzip_mbox_is_read_like_plain(tmp_path):
    path = tmp_path / "t.mbox.gz"
    path.write_bytes(gzip.compress(_mboxrd(4)))
    assert len(list(messages_from_path(path))) == 4


def test_single_eml_file_is_one_message(tmp_path):
    path = tmp_path / "one.eml"
    path.write_bytes(MAIL % (1, 1))
    assert list(messages_from_path(path)) == [MAIL % (1, 1)]


def test_garbage_file_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.bin"
    path.write_bytes(b"\x00\x01 not mail at all")
    with pytest.raises(MboxError, match="not a mail"):
        list(messages_from_path(path))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(MboxError, match="no such file"):
        list(messages_from_path(tmp_path / "nope.mbox"))


def test_mboxo_from_lines_are_unquoted(tmp_path):
    path = tmp_path / "o.mbox"
    path.write_bytes(b"From someone@x Mon Sep 17 00:00:00 2001\n" + (MAIL % (1, 1)))
    (msg,) = messages_from_path(path)
    assert b"\nFrom here\n" in msg


def test_bare_from_separators_split_messages_but_body_lines_do_not():
    box = (b"From x\nFrom: A <a@example.org>\nSubject: one\nMessage-ID: <1@x>\n\nbody one\n\n"
           b"From here\non it is prose.\n\n"
           b"From -\nMessage-ID: <2@x>\nSubject: two\n\nbody two\n")
    out = list(mbox.messages_from_stream(io.BytesIO(box)))
    assert len(out) == 2
    assert b"From here\non it is prose." in out[0]
    assert out[1].startswith(b"Message-ID: <2@x>")


def test_gzip_bomb_on_disk_stops_at_the_inflated_cap_with_a_reason(tmp_path):
    import zlib
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    path = tmp_path / "bomb.mbox.gz"
    with open(path, "wb") as out:
        out.write(comp.compress(b"From a@b Mon Jan  1 00:00:00 2024\nMessage-ID: <x@y>\n\n"))
        for _ in range(64):
            out.write(comp.compress((b"A" * 1023 + b"\n") * 1024))  # 1 MB each
        out.write(comp.flush())
    assert path.stat().st_size < 1 << 20
    with pytest.raises(MboxError, match="inflates to more than 4194304 bytes"):
        for _ in messages_from_path(path, max_inflated=4 << 20):
            pass
    assert sum(len(m) for m in messages_from_path(path, max_inflated=1 << 30)) > 60 << 20
