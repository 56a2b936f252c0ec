"""Parse git-style unified diffs and apply their hunks to byte strings.

Pure Python, no git: the git layer (untangle.gitrepo) reads pre-images from the
object database and writes the results back. Kept separate so the parser can be
tested and reasoned about on its own.

Conventions follow `git apply`: hunks must match exactly (no fuzz) but may be
found at an offset; a hunk without leading context anchors to the start of the
file, one without trailing context to its end. Line numbers in errors are
1-based line numbers of the diff text given to parse_diff.
"""
from __future__ import annotations

import base64
import re
import zlib
from dataclasses import dataclass, field

NULL_BLOB_RE = re.compile(rb"^0+$")
HUNK_RE = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
INDEX_RE = re.compile(rb"^index ([0-9a-fA-F]+)\.\.([0-9a-fA-F]+)(?: (\d+))?\s*$")
# The file modes git writes for blobs: regular, executable, symlink. 160000
# (a submodule link) and anything else is refused before the git layer.
VALID_MODES = ("100644", "100755", "120000")
# Default cap on one binary hunk's inflated size (parse_diff's max_binary).
MAX_BINARY_BYTES = 16 * 1024 * 1024


class PatchError(Exception):
    """Bad input: the patch text itself is corrupt (status "failed")."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


@dataclass
class Hunk:
    old_start: int
    old_lines: int
    new_start: int
    new_lines: int
    header: str
    line: int  # line number of the @@ header in the diff text
    old: list[bytes] = field(default_factory=list)  # context + removed lines
    new: list[bytes] = field(default_factory=list)  # context + added lines
    leading: int = 0  # context lines before the first change
    trailing: int = 0  # context lines after the last change

    def to_dict(self, path: str) -> dict:
        return {"file": path, "header": self.header,
                "old_start": self.old_start, "old_lines": self.old_lines}


@dataclass
class BinaryHunk:
    kind: str  # "literal" or "delta"
    size: int
    data: bytes  # zlib-inflated payload


@dataclass
class FilePatch:
    old_path: str | None  # None: file is created
    new_path: str | None  # None: file is deleted
    line: int  # line number of the header that opened this file
    old_mode: str | None = None
    new_mode: str | None = None
    old_blob: str | None = None  # abbreviated pre-image blob id from "index a..b"
    new_blob: str | None = None
    is_new: bool = False
    is_delete: bool = False
    is_rename: bool = False
    is_copy: bool = False
    hunks: list[Hunk] = field(default_factory=list)
    binary: BinaryHunk | None = None
    binary_without_data: bool = False  # "Binary files a/x and b/x differ"

    @property
    def path(self) -> str:
        """The name to report: the post-image path, or the deleted path."""
        return self.new_path or self.old_path or "?"


# ---------------------------------------------------------------- parsing

def split_lines(data: bytes) -> list[bytes]:
    """Lines with their '\n' kept; unlike bytes.splitlines a lone '\r' is data."""
    if b"\r" not in data:  # the common case: C speed
        return data.splitlines(keepends=True)
    parts = data.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


_C_ESCAPES = {b"a": 7, b"b": 8, b"t": 9, b"n": 10, b"v": 11, b"f": 12, b"r": 13,
              b'"': 34, b"\\": 92}


def _unquote(s: bytes) -> tuple[bytes, bytes]:
    """Read a C-quoted name starting at s[0] == '"'; return (name, rest)."""
    out = bytearray()
    i = 1
    while i < len(s):
        c = s[i:i + 1]
        if c == b'"':
            return bytes(out), s[i + 1:]
        if c == b"\\":
            nxt = s[i + 1:i + 2]
            if nxt in _C_ESCAPES:
                out.append(_C_ESCAPES[nxt])
                i += 2
                continue
            if re.match(rb"[0-7]{3}", s[i + 1:i + 4]):
                out.append(int(s[i + 1:i + 4], 8))
                i += 4
                continue
            raise ValueError("bad escape in quoted name")
        out += c
        i += 1
    raise ValueError("unterminated quoted name")


def _strip_prefix(name: bytes) -> str | None:
    """Drop the a/ or b/ prefix (like -p1); /dev/null means no file."""
    name = name.rstrip(b"\r\n")
    if name.startswith(b'"'):
        name, _ = _unquote(name)
    else:
        name = name.split(b"\t", 1)[0].rstrip(b" ")  # traditional diffs add a date
    if name == b"/dev/null":
        return None
    if b"/" in name:
        name = name.split(b"/", 1)[1]
    return name.decode("utf-8", "surrogateescape")


def _plain_name(raw: bytes) -> str:
    """A name as written after 'rename from' etc.: maybe C-quoted, no prefix."""
    raw = raw.rstrip(b"\r\n")
    if raw.startswith(b'"'):
        raw = _unquote(raw)[0]
    return raw.decode("utf-8", "surrogateescape")


def _drop_first(name: bytes) -> str:
    return (name.split(b"/", 1)[1] if b"/" in name else name).decode("utf-8", "surrogateescape")


def _git_header_names(rest: bytes) -> tuple[str | None, str | None]:
    """Names from 'diff --git a/x b/y' (rest is after 'diff --git ')."""
    rest = rest.rstrip(b"\r\n")
    try:
        if rest.startswith(b'"'):
            a, tail = _unquote(rest)
            tail = tail.lstrip(b" ")
            b = _unquote(tail)[0] if tail.startswith(b'"') else tail
            return _drop_first(a), _drop_first(b)
        if rest.endswith(b'"') and b' "' in rest:
            idx = rest.rindex(b' "')
            return _drop_first(rest[:idx]), _drop_first(_unquote(rest[idx + 1:])[0])
    except ValueError:
        return None, None
    # Unquoted names may contain spaces: prefer the split with equal halves.
    half = (len(rest) - 1) // 2
    if len(rest) % 2 == 1 and rest[half:half + 1] == b" ":
        a, b = rest[:half], rest[half + 1:]
        if a.split(b"/", 1)[-1] == b.split(b"/", 1)[-1]:
            return _drop_first(a), _drop_first(b)
    idx = rest.find(b" b/")
    if idx < 0:
        idx = rest.rfind(b" ")
    if idx < 0:
        return None, None
    return _drop_first(rest[:idx]), _drop_first(rest[idx + 1:])


def header_paths(line: str | bytes) -> tuple[str | None, str | None]:
    """(old, new) path of a 'diff --git a/x b/y' line, quoted names and spaces included;
    (None, None) for anything else. The one diff-header parser pages and the applier share."""
    raw = line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line
    if not raw.startswith(b"diff --git "):
        return None, None
    return _git_header_names(raw[len(b"diff --git "):].split(b"\n", 1)[0])


def parse_diff(text: str | bytes, max_binary: int = MAX_BINARY_BYTES) -> list[FilePatch]:
    """Split diff text into FilePatch objects; raise PatchError on corruption.

    A binary hunk inflating to more than *max_binary* bytes is refused while
    it is inflated (the deflate stream is outside input: it may be a bomb).
    """
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    lines = split_lines(data)
    files: list[FilePatch] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(b"diff --git "):
            fp, i = _parse_git_file(lines, i, max_binary)
            _check_file(fp)
            files.append(fp)
        elif (line.startswith(b"--- ") and i + 2 < len(lines)
              and lines[i + 1].startswith(b"+++ ") and lines[i + 2].startswith(b"@@ ")):
            fp = FilePatch(old_path=_strip_prefix(line[4:]), new_path=_strip_prefix(lines[i + 1][4:]),
                           line=i + 1)
            fp.is_new, fp.is_delete = fp.old_path is None, fp.new_path is None
            i = _parse_hunks(lines, i + 2, fp)
            _check_file(fp)
            files.append(fp)
        else:
            i += 1  # commentary, diffstat, signature: ignored like git apply does
    return files


def _check_file(fp: FilePatch) -> None:
    """Modes and paths the git layer may be given; PatchError otherwise."""
    for mode in (fp.old_mode, fp.new_mode):
        if mode is not None and mode not in VALID_MODES:
            raise PatchError(f"{fp.path}: invalid file mode {mode[:20]!r} "
                             f"(allowed: {', '.join(VALID_MODES)})", fp.line)
    for path in (fp.old_path, fp.new_path):
        if path is not None and not _valid_path(path):
            raise PatchError(f"invalid path {path[:200]!r}", fp.line)


def _valid_path(path: str) -> bool:
    parts = path.split("/")
    return (0 < len(path) <= 4096 and "\0" not in path
            and all(p not in ("", ".", "..") for p in parts)
            and parts[0].lower() != ".git")


def _mode_text(raw: bytes) -> str:
    return raw.strip().decode("ascii", "replace")


def _parse_git_file(lines: list[bytes], i: int, max_binary: int) -> tuple[FilePatch, int]:
    start = i
    a, b = _git_header_names(lines[i][len(b"diff --git "):])
    fp = FilePatch(old_path=a, new_path=b, line=i + 1)
    i += 1
    saw_names = False
    while i < len(lines):
        line = lines[i].rstrip(b"\r\n")
        if line.startswith(b"old mode "):
            fp.old_mode = _mode_text(line[9:])
        elif line.startswith(b"new mode "):
            fp.new_mode = _mode_text(line[9:])
        elif line.startswith(b"deleted file mode "):
            fp.is_delete, fp.old_mode = True, _mode_text(line[18:])
        elif line.startswith(b"new file mode "):
            fp.is_new, fp.new_mode = True, _mode_text(line[14:])
        elif line.startswith((b"rename from ", b"copy from ")):
            fp.old_path = _plain_name(line.split(b" ", 2)[2])
            fp.is_rename, fp.is_copy = line.startswith(b"rename"), line.startswith(b"copy")
        elif line.startswith((b"rename to ", b"copy to ")):
            fp.new_path = _plain_name(line.split(b" ", 2)[2])
        elif line.startswith((b"similarity index ", b"dissimilarity index ")):
            pass
        elif m := INDEX_RE.match(line):
            fp.old_blob, fp.new_blob = m.group(1).decode(), m.group(2).decode()
            if m.group(3):
                fp.old_mode = fp.old_mode or m.group(3).decode()
                fp.new_mode = fp.new_mode or m.group(3).decode()
        elif line.startswith(b"--- "):
            if not fp.is_rename and not fp.is_copy:
                name = _strip_prefix(line[4:])
                if name is not None:
                    fp.old_path = name
            saw_names = True
        elif line.startswith(b"+++ "):
            if not fp.is_rename and not fp.is_copy:
                name = _strip_prefix(line[4:])
                if name is not None:
                    fp.new_path = name
            saw_names = True
        elif line.startswith(b"@@ "):
            if not saw_names:
                raise PatchError("hunk without ---/+++ file names", i + 1)
            break
        elif line == b"GIT binary patch":
            fp.binary, i = _parse_binary(lines, i + 1, max_binary)
            break
        elif line.startswith(b"Binary files ") and line.endswith(b" differ"):
            fp.binary_without_data = True
            i += 1
            break
        else:
            break  # end of the extended header block
        i += 1
    if fp.is_new:
        fp.old_path = None
    if fp.is_delete:
        fp.new_path = None
    if fp.old_path is None and fp.new_path is None:
        raise PatchError("git diff header lacks filename information", start + 1)
    if i < len(lines) and lines[i].startswith(b"@@ "):
        i = _parse_hunks(lines, i, fp)
    elif not (fp.binary or fp.binary_without_data or fp.is_new or fp.is_delete
              or fp.is_rename or fp.is_copy or (fp.old_mode and fp.new_mode)):
        raise PatchError("patch with only garbage", start + 1)
    return fp, i


def _parse_hunks(lines: list[bytes], i: int, fp: FilePatch) -> int:
    """Read consecutive hunks starting at lines[i] (an @@ line)."""
    while i < len(lines) and lines[i].startswith(b"@@ "):
        m = HUNK_RE.match(lines[i].rstrip(b"\r\n"))
        if not m:
            raise PatchError("corrupt hunk header", i + 1)
        h = Hunk(old_start=int(m.group(1)), old_lines=int(m.group(2) or 1),
                 new_start=int(m.group(3)), new_lines=int(m.group(4) or 1),
                 header=lines[i].rstrip(b"\r\n").decode("utf-8", "replace"), line=i + 1)
        i = _parse_hunk_body(lines, i + 1, h)
        fp.hunks.append(h)
    # A +/- line right after the last hunk means the hunk header under-counts
    # (a hand-edited patch): git ignores it silently, we refuse.
    if i < len(lines) and lines[i][:1] in (b"+", b"-") and not lines[i].startswith((b"-- ", b"---", b"+++")):
        raise PatchError("corrupt patch: line outside any hunk (hunk header counts wrong?)", i + 1)
    return i


def _parse_hunk_body(lines: list[bytes], i: int, h: Hunk) -> int:
    old_left, new_left = h.old_lines, h.new_lines
    last = None  # tag of the previous body line, for "\ No newline"
    changed = False
    while old_left > 0 or new_left > 0:
        if i >= len(lines):
            raise PatchError("corrupt patch: hunk ends early", len(lines))
        line = lines[i]
        tag = line[:1]
        if tag in (b"\n", b"\r") and line.strip(b"\r\n") == b"":
            tag, line = b" ", b" " + line  # mailers drop the space of empty context lines
        if tag == b" " and old_left > 0 and new_left > 0:
            h.old.append(line[1:]), h.new.append(line[1:])
            old_left, new_left = old_left - 1, new_left - 1
            if changed:
                h.trailing += 1
            else:
                h.leading += 1
        elif tag == b"-" and old_left > 0:
            h.old.append(line[1:])
            old_left -= 1
            changed, h.trailing = True, 0
        elif tag == b"+" and new_left > 0:
            h.new.append(line[1:])
            new_left -= 1
            changed, h.trailing = True, 0
        elif tag == b"\\" and last is not None:
            _drop_newline(h, last)
        else:
            raise PatchError("corrupt patch", i + 1)
        last = tag if tag != b"\\" else None
        i += 1
    if i < len(lines) and lines[i].startswith(b"\\") and last is not None:
        _drop_newline(h, last)
        i += 1
    return i


def _drop_newline(h: Hunk, tag: bytes) -> None:
    """'\\ No newline at end of file' applies to the line just read."""
    def strip(seq: list[bytes]) -> None:
        if seq:
            seq[-1] = seq[-1][:-2] if seq[-1].endswith(b"\r\n") else seq[-1].rstrip(b"\n")
    if tag in (b" ", b"-"):
        strip(h.old)
    if tag in (b" ", b"+"):
        strip(h.new)


# ---------------------------------------------------------------- binary

def _parse_binary(lines: list[bytes], i: int, cap: int) -> tuple[BinaryHunk, int]:
    """Read the forward binary hunk (literal/delta); skip the reverse one."""
    forward, i = _parse_binary_hunk(lines, i, cap)
    if i < len(lines) and lines[i].startswith((b"literal ", b"delta ")):
        _, i = _parse_binary_hunk(lines, i, cap)
    return forward, i


def _inflate(raw: bytes, cap: int, line: int) -> bytes:
    """zlib-inflate *raw*, stopping (PatchError) once more than *cap* bytes come out."""
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(raw, cap + 1)
    except zlib.error:
        raise PatchError("corrupt binary patch: bad deflate data", line) from None
    if len(data) > cap or inflater.unconsumed_tail:
        raise PatchError(f"binary patch inflates to more than {cap} bytes "
                         "(REVIEWAPP_BINARY_PATCH_MAX_BYTES)", line)
    if not inflater.eof:
        raise PatchError("corrupt binary patch: bad deflate data", line)
    return data


def _parse_binary_hunk(lines: list[bytes], i: int, cap: int) -> tuple[BinaryHunk, int]:
    if i >= len(lines):
        raise PatchError("corrupt binary patch: missing hunk", i)
    head = lines[i].rstrip(b"\r\n").split(b" ")
    if len(head) != 2 or head[0] not in (b"literal", b"delta") or not head[1].isdigit():
        raise PatchError("corrupt binary patch", i + 1)
    start = i + 1
    if int(head[1]) > cap:  # the declared size: refused before inflating
        raise PatchError(f"binary patch of {int(head[1])} bytes is larger than {cap} bytes "
                         "(REVIEWAPP_BINARY_PATCH_MAX_BYTES)", start)
    i += 1
    raw = bytearray()
    while i < len(lines) and lines[i].strip(b"\r\n"):
        line = lines[i].rstrip(b"\r\n")
        c = line[0]
        n = c - 64 if 65 <= c <= 90 else c - 70 if 97 <= c <= 122 else -1
        if n < 0 or (len(line) - 1) % 5 or (len(line) - 1) // 5 * 4 < n:
            raise PatchError("corrupt binary patch", i + 1)
        try:
            raw += base64.b85decode(line[1:])[:n]
        except ValueError:
            raise PatchError("corrupt binary patch", i + 1) from None
        i += 1
    data = _inflate(bytes(raw), cap, start)
    if head[0] == b"literal" and len(data) != int(head[1]):
        raise PatchError("corrupt binary patch: size mismatch", start)
    return BinaryHunk(head[0].decode(), int(head[1]), data), i + 1


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    val = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        val |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return val, pos


def apply_delta(src: bytes, delta: bytes) -> bytes:
    """Apply a git pack-style delta (as in 'GIT binary patch' delta hunks)."""
    src_size, pos = _varint(delta, 0)
    dst_size, pos = _varint(delta, pos)
    if src_size != len(src):
        raise ValueError("binary delta does not match the pre-image size")
    if dst_size > max(MAX_BINARY_BYTES, 2 * len(src)):
        raise ValueError(f"binary delta result of {dst_size} bytes is too large")
    out = bytearray()
    while pos < len(delta):
        op = delta[pos]
        pos += 1
        if op & 0x80:
            off = size = 0
            for k in range(4):
                if op & (1 << k):
                    off |= delta[pos] << (8 * k)
                    pos += 1
            for k in range(3):
                if op & (1 << (4 + k)):
                    size |= delta[pos] << (8 * k)
                    pos += 1
            size = size or 0x10000
            out += src[off:off + size]
        elif op:
            out += delta[pos:pos + op]
            pos += op
        else:
            raise ValueError("corrupt binary delta")
    if len(out) != dst_size:
        raise ValueError("binary delta result has the wrong size")
    return bytes(out)


# ---------------------------------------------------------------- applying

def _find(lines: list[bytes], seq: list[bytes], want: int, begin: bool, end: bool,
          lo: int) -> int | None:
    """Position where seq matches lines, nearest to want; None if nowhere."""
    n, k = len(lines), len(seq)
    if begin and end:
        return 0 if lines == seq else None
    if begin:
        return 0 if lines[:k] == seq else None
    if end:
        return n - k if n >= k and lines[n - k:] == seq else None
    if k == 0:
        return min(max(want, lo), n)
    first = seq[0]
    hi = n - k
    want = min(max(want, lo), max(hi, lo))
    for delta in range(0, max(want - lo, hi - want) + 1):
        for p in (want + delta, want - delta) if delta else (want,):
            if lo <= p <= hi and lines[p] == first and lines[p:p + k] == seq:
                return p
    return None


def apply_hunks(content: bytes, hunks: list[Hunk]) -> tuple[bytes, list[Hunk]]:
    """Apply hunks in order; return (result, hunks that did not apply)."""
    lines = split_lines(content)
    out: list[bytes] = []
    cursor = 0  # lines before cursor are final (copied to out)
    offset = 0  # how far the previous hunk moved from its stated position
    failed: list[Hunk] = []
    for h in hunks:
        want = (h.old_start if h.old_lines == 0 else h.old_start - 1) + offset
        # Like git apply: a hunk at line 0/1 anchors to the start, one without
        # trailing context to the end (patches are not --unidiff-zero).
        begin = h.old_start <= 1
        end = h.trailing == 0
        pos = _find(lines, h.old, want, begin, end, cursor)
        if pos is None or pos < cursor:
            failed.append(h)
            continue
        offset = pos - (h.old_start if h.old_lines == 0 else h.old_start - 1)
        out.extend(lines[cursor:pos])
        out.extend(h.new)
        cursor = pos + len(h.old)
    out.extend(lines[cursor:])
    return b"".join(out), failed
