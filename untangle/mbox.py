"""Stream raw messages out of mbox, mboxrd, .eml and gzip files.

Memory stays flat in the file size: one message is held at a time.
"""
import gzip
import io
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


# Default bound on what one .gz file may inflate to (REVIEWAPP_GZIP_MAX_BYTES):
# the kselftest archive of 20,762 mails inflates to well under 1 GB.
GZIP_MAX_BYTES = 8 * 1024 * 1024 * 1024


class MboxError(ValueError):
    pass


class _CappedInflate(io.RawIOBase):
    """A gzip stream that raises MboxError once it inflated more than *cap*
    bytes: a gzip bomb stops there instead of filling memory or disk."""

    def __init__(self, gz: gzip.GzipFile, cap: int, name: str) -> None:
        self._gz, self._cap, self._name, self._total = gz, cap, name, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # noqa: ANN001
        n = self._gz.readinto(buf)
        self._total += n
        if self._total > self._cap:
            raise MboxError(f"{self._name}: inflates to more than {self._cap} bytes "
                            "(REVIEWAPP_GZIP_MAX_BYTES)")
        return n

    def close(self) -> None:
        self._gz.close()
        super().close()


def open_maybe_gzip(path: Path, max_inflated: int = GZIP_MAX_BYTES) -> BinaryIO:
    fh = open(path, "rb")
    magic = fh.read(2)
    fh.seek(0)
    if magic == b"\x1f\x8b":
        gz = gzip.GzipFile(fileobj=fh, mode="rb")
        return io.BufferedReader(_CappedInflate(gz, max_inflated, str(path)), 1 << 16)
    return fh


def messages_from_path(path: str | Path, max_inflated: int = GZIP_MAX_BYTES) -> Iterator[bytes]:
    path = Path(path)
    if not path.is_file():
        raise MboxError(f"{path}: no such file")
    with open_maybe_gzip(path, max_inflated) as fh:
        try:
            yield from messages_from_stream(fh)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise MboxError(f"{path}: unreadable ({exc})") from exc


def messages_from_stream(fh: BinaryIO) -> Iterator[bytes]:
    first = fh.readline()
    if not first:
        return
    if not first.startswith(b"From "):
        # A single message (.eml) has no separator line.
        body = first + fh.read()
        if not _looks_like_headers(body):
            raise MboxError("not a mail message or mbox (no headers found)")
        yield body
        return
    rd = b"mboxrd" in first
    current: list[bytes] = []
    append = current.append
    previous_blank = True
    bare: bytes | None = None  # a bare "From x" line, a separator if a header follows
    # The per-line work is kept inline: this loop sees every line of the archive.
    for line in fh:
        if bare is not None:
            if _FIRST_HEADER.match(line):
                if current:
                    yield _finish(current)
                current = []
                append = current.append
            else:
                append(bare)
            bare = None
        elif previous_blank and line[:5] == b"From ":
            if _SEPARATOR.match(line):
                if current:
                    yield _finish(current)
                current = []
                append = current.append
                continue
            if _BARE_SEPARATOR.match(line):
                bare = line
                previous_blank = False
                continue
        previous_blank = line == b"\n" or line == b"\r\n"
        append(_unquote(line, rd) if line[:1] == b">" else line)
    if bare is not None:
        append(bare)
    if current:
        yield _finish(current)


def _unquote(line: bytes, rd: bool) -> bytes:
    if not line.startswith(b">"):
        return line
    if rd:
        return _RD_QUOTED.sub(rb"\1", line)
    return _O_QUOTED.sub(b"From ", line)


def _finish(lines: list[bytes]) -> bytes:
    # The blank line before the next separator belongs to the mbox, not the mail.
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]
    return b"".join(lines)


def _looks_like_headers(raw: bytes) -> bool:
    head = raw.split(b"\n\n", 1)[0][:4096]
    return bool(re.search(rb"^(Message-ID|From|Subject|Date):", head, re.I | re.M))
