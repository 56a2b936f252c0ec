"""`git patch-id --stable`, computed in-process.

A git process per patch costs about 2 ms; this costs microseconds. The rules
follow git's builtin/patch-id.c: commit text before the first "diff " line is
ignored, index lines and hunk headers are skipped, every other line is hashed
with all whitespace removed, and in stable mode each file's hash is summed
into the result so that file order does not matter.
"""
import hashlib
import re

_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_HEX40 = re.compile(r"^[0-9a-f]{40}")
_SPACE = re.compile(r"\s+")


def _add(result: bytearray, digest: bytes) -> None:
    carry = 0
    for i, byte in enumerate(digest):
        carry += result[i] + byte
        result[i] = carry & 0xFF
        carry >>= 8


def _hunk_counts(line: str) -> tuple[int, int]:
    m = _HUNK.match(line)
    if not m:
        return 0, 0
    before = int(m.group(1)) if m.group(1) is not None else 1
    after = int(m.group(2)) if m.group(2) is not None else 1
    return before, after


_ASCII_SPACE = bytes(i for i in range(128) if chr(i).isspace())


def _squeezed_sha1(lines: list[str], tail: bytes = b"") -> bytes:
    # Removing whitespace line by line or from the joined lines is the same,
    # and one sha1 over the joined bytes equals updates line by line.
    text = "".join(lines)
    if text.isascii():  # bytes.translate: the same characters as str.split(), in C
        ctx = hashlib.sha1(text.encode().translate(None, _ASCII_SPACE))
    else:
        ctx = hashlib.sha1("".join(text.split()).encode("utf-8", "surrogateescape"))
    ctx.update(tail)
    return ctx.digest()


def patch_id(text: str) -> str | None:
    """The stable patch-id of the first patch in text, or None if it has no diff."""
    result = bytearray(20)
    hashed: list[str] = []  # lines of the current file, hashed when the file ends
    started = False
    before = after = -1
    pre = post = ""
    binary = False
    for line in text.splitlines(keepends=True):
        first = line[0]
        # Fast path, most lines: a context, removed or added line inside a hunk.
        if started and before != -1 and not binary and (before or after) and first in " +-":
            if first != "+":
                before -= 1
            if first != "-":
                after -= 1
            hashed.append(line)
            continue
        if line.startswith("\\ ") and len(line) > 12:
            continue
        probe = line[7:] if line.startswith("commit ") else line[5:] if line.startswith("From ") else line
        if _HEX40.match(probe):
            break
        if not started and not line.startswith("diff "):
            continue
        if before == -1:
            if line.startswith("GIT binary patch") or line.startswith("Binary files"):
                binary, before = True, 0
                _add(result, _squeezed_sha1(hashed, pre.encode() + post.encode()))
                hashed = []
                continue
            if line.startswith("index "):
                pre, post = _index_ids(line)
                continue
            if line.startswith("--- "):
                before = after = 1
            elif not line[:1].isalpha():
                break
        if binary:
            if line.startswith("diff "):
                binary, before = False, -1
            else:
                continue
        if before == 0 and after == 0:
            if line.startswith("@@ -"):
                before, after = _hunk_counts(line)
                continue
            if not line.startswith("diff "):
                break
            _add(result, _squeezed_sha1(hashed))
            hashed = []
            before = after = -1
        if first in "- ":
            before -= 1
        if first in "+ ":
            after -= 1
        hashed.append(line)
        started = True
    if not started:
        return None
    _add(result, _squeezed_sha1(hashed))
    return bytes(result).hex()


def _index_ids(line: str) -> tuple[str, str]:
    rest = line[len("index "):].rstrip("\n")
    if ".." not in rest:
        return "", ""
    pre, _, tail = rest.partition("..")
    return pre, tail.split(" ", 1)[0]
