"""Stream raw messages out of mbox, mboxrd, .eml and gzip files.

Memory stays flat in the file size: one message is held at a time.
"""
import gzip
import io
import os
import re
from pathlib import Path
from typing import BinaryIO, Iterator

# A separator is "From <addr> <asctime>"; requiring the date keeps a body line
# that happens to start with "From " (unquoted, as git format-patch leaves it)
# from splitting a message.
_SEPARATOR = re.compile(rb"^From \S+ +(\w{3} +\w{3} +\d+ +[\d:]+ +\d{4}|.*\d{4})\s*$")
# Some tools write a bare "From x" (or "From -") separator with no date. Such
# a line splits only when a header a mail starts with follows it: a body line
# "From foo" followed by prose does not.
_BARE_SEPARATOR = re.compile(rb"^From \S+\s*$")
_FIRST_HEADER = re.compile(rb"^(Return-Path|Received|From|Date|Subject|Message-ID|To|Cc|Sender|"
                           rb"MIME-Version|Content-[\w-]+|X-[\w-]+|Delivered-To|DKIM-Signature|"
                           rb"ARC-[\w-]+|Authentication-Results|In-Reply-To|References|List-[\w-]+):",
                           re.I)
_RD_QUOTED = re.compile(rb"^>(>*From )")
_O_QUOTED = re.compile(rb"^>From ")


# Default bounds on what one .gz file may inflate to. Mail archives inflate to
# about 4 times their size (linux-kselftest 2019-2021: 49.7 MB -> 188.9 MB, 3.8x),
# so a file may grow GZIP_MAX_RATIO times (REVIEWAPP_GZIP_MAX_RATIO, a margin of
# about 6) but never below GZIP_RATIO_FLOOR (small files) nor past GZIP_MAX_BYTES
# (REVIEWAPP_GZIP_MAX_BYTES: a year of a busy list fits).
GZIP_MAX_BYTES = 4 * 1024 * 1024 * 1024
GZIP_MAX_RATIO = 25
GZIP_RATIO_FLOOR = 64 * 1024 * 1024


def inflate_cap(compressed: int, max_inflated: int = GZIP_MAX_BYTES, max_ratio: int = GZIP_MAX_RATIO) -> int:
    """Bytes a .gz file of `compressed` bytes may inflate to."""
    return min(max_inflated, max(compressed * max_ratio, GZIP_RATIO_FLOOR))


class MboxError(ValueError):
    pass


class _CappedInflate(io.RawIOBase):
    """A gzip stream that raises MboxError once it inflated more than *cap*
    bytes: a gzip bomb stops there instead of filling memory or disk."""

    def __init__(self, gz: gzip.GzipFile, cap: int, name: str, why: str = "REVIEWAPP_GZIP_MAX_BYTES") -> None:
        self._gz, self._cap, self._name, self._total, self._why = gz, cap, name, 0, why

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # noqa: ANN001
        n = self._gz.readinto(buf)
        self._total += n
        if self._total > self._cap:
            raise MboxError(f"{self._name}: inflates to more than {self._cap} bytes ({self._why})")
        return n

    def close(self) -> None:
        self._gz.close()
        super().close()


def open_maybe_gzip(path: Path, max_inflated: int = GZIP_MAX_BYTES, max_ratio: int = GZIP_MAX_RATIO) -> BinaryIO:
    fh = open(path, "rb")
    magic = fh.read(2)
    fh.seek(0)
    if magic == b"\x1f\x8b":
        gz = gzip.GzipFile(fileobj=fh, mode="rb")
        cap = inflate_cap(os.fstat(fh.fileno()).st_size, max_inflated, max_ratio)
        why = ("REVIEWAPP_GZIP_MAX_BYTES" if cap == max_inflated else
               f"{max_ratio} times its size, REVIEWAPP_GZIP_MAX_RATIO")
        return io.BufferedReader(_CappedInflate(gz, cap, str(path), why), 1 << 16)
    return fh


def messages_from_path(path: str | Path, max_inflated: int = GZIP_MAX_BYTES,
                       max_message: int | None = None, max_ratio: int = GZIP_MAX_RATIO) -> Iterator[bytes]:
    path = Path(path)
    if not path.is_file():
        raise MboxError(f"{path}: no such file")
    with open_maybe_gzip(path, max_inflated, max_ratio) as fh:
        try:
            yield from messages_from_stream(fh, max_message)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise MboxError(f"{path}: unreadable ({exc})") from exc


class Cut(bytes):
    """The first bytes of a message larger than the per-message cap; .size is
    the size it had in the mbox. Only the first cap + 1 bytes were held."""

    size: int

    def __new__(cls, data: bytes, size: int) -> "Cut":
        obj = super().__new__(cls, data)
        obj.size = size
        return obj


def messages_from_stream(fh: BinaryIO, max_message: int | None = None) -> Iterator[bytes]:
    """Raw messages; one over max_message bytes comes as a Cut of its first
    max_message + 1 bytes (the rest is read past, never held), so a caller
    refuses it by its size without the mbox's memory growing with it."""
    first = fh.readline()
    if not first:
        return
    cap = max_message if max_message is not None else -1
    if not first.startswith(b"From "):
        # A single message (.eml) has no separator line.
        body = first + (fh.read() if cap < 0 else fh.read(cap + 1))
        if not _looks_like_headers(body):
            raise MboxError("not a mail message or mbox (no headers found)")
        if 0 <= cap < len(body):
            size = len(body) + sum(len(chunk) for chunk in iter(lambda: fh.read(1 << 16), b""))
            body = Cut(body[:cap + 1], size)
        yield body
        return
    rd = b"mboxrd" in first
    current: list[bytes] = []
    append = current.append
    size = 0
    previous_blank = True
    bare: bytes | None = None  # a bare "From x" line, a separator if a header follows
    # The per-line work is kept inline: this loop sees every line of the archive.
    # With a cap, a line is read in pieces of at most cap + 2 bytes: one huge line
    # (no newline in 1 GB) is not held whole either.
    lines = fh if cap < 0 else iter(lambda: fh.readline(cap + 2), b"")
    for line in lines:
        if bare is not None:
            if _FIRST_HEADER.match(line):
                if current:
                    yield _finish(current, size, cap)
                current = []
                append = current.append
                size = 0
            else:
                append(bare)
            bare = None
        elif previous_blank and line[:5] == b"From ":
            if _SEPARATOR.match(line):
                if current:
                    yield _finish(current, size, cap)
                current = []
                append = current.append
                size = 0
                continue
            if _BARE_SEPARATOR.match(line):
                bare = line
                previous_blank = False
                continue
        previous_blank = line == b"\n" or line == b"\r\n"
        size += len(line)
        if cap < 0 or size <= cap + len(line):
            append(_unquote(line, rd) if line[:1] == b">" else line)
    if bare is not None:
        append(bare)
    if current:
        yield _finish(current, size, cap)


def _unquote(line: bytes, rd: bool) -> bytes:
    if not line.startswith(b">"):
        return line
    if rd:
        return _RD_QUOTED.sub(rb"\1", line)
    return _O_QUOTED.sub(b"From ", line)


def _finish(lines: list[bytes], size: int = 0, cap: int = -1) -> bytes:
    if 0 <= cap < size:
        return Cut(b"".join(lines)[:cap + 1], size)
    # The blank line before the next separator belongs to the mbox, not the mail.
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]
    return b"".join(lines)


def _looks_like_headers(raw: bytes) -> bool:
    head = raw.split(b"\n\n", 1)[0][:4096]
    return bool(re.search(rb"^(Message-ID|From|Subject|Date):", head, re.I | re.M))
