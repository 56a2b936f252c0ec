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
    assert sum(len(m) for m in messages_from_path(path, max_inflated=1 << 30, max_ratio=10_000)) > 60 << 20


def _gz_of_zeros(path, inflated_mb: int):
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(b"From a@b Mon Jan  1 00:00:00 2024\nMessage-ID: <x@y>\n\n")
        for _ in range(inflated_mb):
            out.write(b"\0" * (1 << 20))
    return path


def test_by_default_a_gz_file_may_not_inflate_past_25_times_its_size(tmp_path):
    path = _gz_of_zeros(tmp_path / "bomb.mbox.gz", 80)  # ~80 KB inflating to 80 MB
    cap = mbox.inflate_cap(path.stat().st_size)
    assert cap == mbox.GZIP_RATIO_FLOOR  # 25 x 80 KB is below the 64 MiB floor
    with pytest.raises(MboxError, match="25 times its size, REVIEWAPP_GZIP_MAX_RATIO"):
        for _ in messages_from_path(path):
            pass


def test_the_ratio_cap_grows_with_the_file_up_to_the_absolute_cap():
    assert mbox.inflate_cap(10 << 20) == 250 << 20
    assert mbox.inflate_cap(1 << 30) == mbox.GZIP_MAX_BYTES == 4 << 30
    assert mbox.inflate_cap(1 << 20, max_inflated=8 << 20) == 8 << 20


def test_a_slice_of_the_real_archive_reads_whole_under_the_default_caps(tmp_path):
    from tests.support.archive_slice import write_slice
    plain = write_slice(tmp_path / "slice.mbox", 0, 2000)
    packed = tmp_path / "slice.mbox.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert plain.stat().st_size / packed.stat().st_size < 10  # real mail: about 4x
    assert len(list(messages_from_path(packed))) == len(list(messages_from_path(plain))) == 2000


def test_a_message_over_the_per_message_cap_comes_cut_with_its_real_size(tmp_path):
    body = b"".join(b"%099d\n" % i for i in range(10_000))  # 1,000,000 bytes of body
    raw = b"From: a@b.c\nMessage-ID: <big@x>\n\n" + body
    path = tmp_path / "t.mbox"
    path.write_bytes(b"From x@y Thu Jan  1 00:00:00 1970\n" + raw + b"\n"
                     + b"From x@y Thu Jan  1 00:00:00 1970\n" + MAIL % (1, 1))
    first, second = messages_from_path(path, max_message=4096)
    assert isinstance(first, mbox.Cut) and first.size == len(raw) + 1
    assert len(first) == 4097 and first.startswith(b"From: a@b.c\nMessage-ID: <big@x>")
    assert second == list(messages_from_path(path))[1] and not isinstance(second, mbox.Cut)


def test_one_huge_line_is_not_held_whole_under_the_per_message_cap():
    raw = b"From x@y Thu Jan  1 00:00:00 1970\nMessage-ID: <l@x>\n\n" + b"y" * (8 << 20) + b"\n"
    (msg,) = mbox.messages_from_stream(io.BytesIO(raw), max_message=1000)
    assert len(msg) == 1001 and msg.size > 8 << 20


def test_a_single_eml_over_the_cap_is_cut_too(tmp_path):
    path = tmp_path / "one.eml"
    path.write_bytes(b"From: a@b.c\nMessage-ID: <e@x>\n\n" + b"z\n" * 50_000)
    (msg,) = messages_from_path(path, max_message=2000)
    assert len(msg) == 2001 and msg.size == path.stat().st_size


def test_a_cut_message_is_refused_by_the_parser_naming_its_real_size():
    from untangle import mail
    cut = mbox.Cut(b"From: a@b.c\nMessage-ID: <c@x>\n\n" + b"q" * 2000, 5_000_000)
    with pytest.raises(mail.MailError, match="mail of 5000000 bytes is over the limit of 1024"):
        mail.parse(cut, mail.Limits(max_bytes=1024))
