"""Hostile, structurally interesting mails for the fuzz tests.

Not random bytes: subjects with [PATCH vN M/N] variations, threading
headers, trailers, diffs with odd headers, modes and binary hunks,
charsets, multipart, huge numbers, NULs, and mutations of real mails.

One builder, two drivers: `mail()` is a hypothesis strategy (every choice
a hypothesis draw, so a failure shrinks); `mails_from(random)` makes many
mails from one hypothesis-seeded Random, at a fraction of the cost per
mail (hypothesis draws cost ~25 ms a mail here), so a CI run sees
thousands of mails in seconds and a failing seed is still reproducible.
"""
from __future__ import annotations

import base64
import random
import zlib

from hypothesis import strategies as st

HUGE = [0, 1, 2, 7, 99, 10 ** 6, 2 ** 31, 2 ** 63, 10 ** 40]
NASTY = ["", "\0", "\r", "\n", "\t", "<", ">", "[", "]", "/", "\\", '"', "=?utf-8?b?w6k=?=",
         "=?x?q?bad?=", "\u202e", "\ufeff", "é", "\x7f", "\udcff", "x" * 3000]
WORDS = ["mm", "gup", "KVM: guest_memfd: support", "selftests/mm", "fix", "x86", "net"]


class _Draws:
    """Choices through hypothesis's draw (shrinkable)."""

    def __init__(self, draw) -> None:
        self.draw = draw

    def pick(self, seq):
        return self.draw(st.sampled_from(seq))

    def int(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def text(self, size: int) -> str:
        return self.draw(st.text(max_size=size))

    def bytes(self, size: int) -> bytes:
        return self.draw(st.binary(max_size=size))


class _Random(_Draws):
    """The same choices from a Random (fast)."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd

    def pick(self, seq):
        return self.rnd.choice(seq)

    def int(self, lo: int, hi: int) -> int:
        return self.rnd.randint(lo, hi)

    def text(self, size: int) -> str:
        alphabet = [chr(self.rnd.choice([self.rnd.randint(32, 126), self.rnd.randint(0, 0x2FFF)]))
                    for _ in range(8)]
        return "".join(self.rnd.choice(alphabet) for _ in range(self.rnd.randint(0, size)))

    def bytes(self, size: int) -> bytes:
        return self.rnd.randbytes(self.rnd.randint(0, size))


def _num(c: _Draws) -> int:
    return c.int(0, 30) if c.int(0, 2) else c.pick(HUGE)


def _word(c: _Draws) -> str:
    return c.pick([c.text(12), c.pick(WORDS), c.pick(NASTY)]) if c.int(0, 1) else c.pick(WORDS)


def _prefix(c: _Draws) -> str:
    parts = [c.pick(["PATCH", "RFC", "PATCH RFC", "RESEND PATCH", "patch", "PATCH net-next",
                     "GIT PULL", "", "PATCHv2", "PATCH-v3", "RFC v2"])]
    if c.int(0, 1):
        parts.append(c.pick(["v", "V", "v-", ""]) + str(_num(c)))
    if c.int(0, 1):
        parts.append(f"{_num(c)}/{_num(c)}")
    parts += [_word(c) for _ in range(c.int(0, 2))]
    return "[" + c.pick([" ", "  ", "", ","]).join(parts) + c.pick(["]", "", "]]"]) + " "


def _subject(c: _Draws) -> str:
    lead = c.pick(["", "Re: ", "RE: Re: ", "Fwd: ", "Aw: "])
    return lead + "".join(_prefix(c) for _ in range(c.int(0, 3))) + _word(c)


def _msgid(c: _Draws) -> str:
    return c.pick([f"<{c.int(0, 50)}@fuzz.example>", f"<{c.int(0, 50)}@fuzz.example>",
                   f"<{c.text(20)}>", c.pick(NASTY), "<>", "<" + "x" * 2000 + "@y>"])


def _binary_hunk(c: _Draws) -> str:
    payload = c.bytes(64) if c.int(0, 3) else b"\0" * 100000
    deflated = zlib.compress(payload) if c.int(0, 1) else c.bytes(40)
    size = len(payload) if c.int(0, 1) else c.pick(HUGE)
    lines = []
    for i in range(0, len(deflated), 52):
        chunk = deflated[i:i + 52]
        n = len(chunk)
        lines.append((chr(64 + n) if n <= 26 else chr(70 + n))
                     + base64.b85encode(chunk + b"\0" * (-n % 4)).decode())
    return f"GIT binary patch\n{c.pick(['literal', 'delta'])} {size}\n" + "\n".join(lines) + "\n\n"


_EXT = ["new file mode 100644", "deleted file mode 100755", "new file mode 160000",
        "old mode 100644", "new mode 120000", "new mode 99999999999", "old mode \xff",
        "rename from {n}", "rename to other", "similarity index 90%",
        "index 1234567..89abcde 100644", "index 0000000..0000000", "copy from a", "copy to b",
        "Binary files a/x and b/x differ"]


def _file_diff(c: _Draws) -> str:
    name = c.pick(["mm/gup.c", "a b", "x/../y", ".git/config", "/etc/passwd", '"q\\tuoted"',
                   "dir/", "\0", "é/ü.c", c.text(20)])
    body = [c.pick([f"diff --git a/{name} b/{name}", "diff --git ", f"diff --git a/{name}",
                    f'diff --git "a/{name}" "b/{name}"'])]
    body += [c.pick(_EXT).format(n=name) for _ in range(c.int(0, 4))]
    if c.int(0, 1):
        body += [f"--- a/{name}", f"+++ b/{name}"]
        for _ in range(c.int(0, 3)):
            body.append(f"@@ -{_num(c)},{_num(c)} +{_num(c)},{_num(c)} @@ {_word(c)}")
            body += [c.pick([" ", "+", "-", "\\", ""]) + _word(c) for _ in range(c.int(0, 6))]
    text = "\n".join(body) + "\n"
    return text + _binary_hunk(c) if c.int(0, 2) == 0 else text


_TRAILERS = ["Signed-off-by: A <a@x>", "Reviewed-by: B", "Acked-by: <", "Based-on: <1@fuzz.example>",
             "Depends-on: " + "x" * 300, "Link: https://lore.kernel.org/r/1@fuzz.example",
             "base-commit: abc", "prerequisite-patch-id: " + "f" * 40, "Cc: \0"]


def _body(c: _Draws) -> str:
    parts = [_word(c)] + [c.pick(_TRAILERS) for _ in range(c.int(0, 4))]
    if c.int(0, 1):
        parts.append("---\n " + _word(c) + " | 2 +-\n")
        parts += [_file_diff(c) for _ in range(c.int(1, 3))]
        parts.append(c.pick(["-- \n2.40.0\n", "", "--\n"]))
    return "\n".join(parts)


def _mail(c: _Draws) -> bytes:
    headers = []
    if c.int(0, 9):
        headers.append(("Message-ID", _msgid(c)))
    headers.append(("Subject", _subject(c)))
    headers.append(("From", c.pick(["A <a@x>", "Eve <evil <e@x>", "=?utf-8?q?=C3=A9?= <e@x>", "",
                                    "<>", "no-at-sign", '"\0" <n@x>'])))
    headers.append(("Date", c.pick(["Mon, 1 Jan 2024 00:00:00 +0000", "yesterday", "",
                                    "Mon, 1 Jan 99999 00:00:00 +9999", "Tue, 31 Feb 2024 25:61:61 -0000"])))
    for _ in range(c.int(0, 3)):
        name = c.pick(["In-Reply-To", "References", "List-Id", "To", "Cc"])
        headers.append((name, " ".join(_msgid(c) for _ in range(c.int(0, 3)))))
    charset = c.pick(["utf-8", "iso-8859-1", "x-unknown", "utf-16", "", "us-ascii"])
    cte = c.pick(["", "8bit", "quoted-printable", "base64", "x-uuencode"])
    text = _body(c)
    if c.int(0, 4) == 0:
        headers.append(("Content-Type", 'multipart/mixed; boundary="B"'))
        payload = (f"--B\nContent-Type: text/plain; charset={charset}\n\n{text}\n"
                   f"--B\nContent-Type: text/x-patch\nContent-Transfer-Encoding: {cte}\n\n"
                   f"{_file_diff(c)}\n" + c.pick(["--B--\n", ""]))
    else:
        headers += [(k, v) for k, v in (("Content-Type", f"text/plain; charset={charset}"),
                                        ("Content-Transfer-Encoding", cte)) if v and c.int(0, 1)]
        payload = text
    raw = ("".join(f"{k}: {v}\n" for k, v in headers) + "\n" + payload).encode("utf-8", "surrogatepass")
    return _mutate(c, raw) if c.int(0, 3) == 0 else raw


_INSERTS = [b"\0", b"\n\n", b"\r", b"\xff\xfe", b"From x", b"\n--\n", b"diff --git a/x b/x\n",
            b"=?", b"\n "]


def _mutate(c: _Draws, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(c.int(1, 4)):
        op, pos = c.pick(["flip", "insert", "delete", "truncate", "dup"]), c.int(0, max(0, len(data) - 1))
        if op == "flip" and data:
            data[pos] = c.int(0, 255)
        elif op == "insert":
            data[pos:pos] = c.pick(_INSERTS)
        elif op == "delete":
            del data[pos:pos + c.int(1, 64)]
        elif op == "truncate":
            del data[pos:]
        elif op == "dup":
            data[pos:pos] = data[max(0, pos - 200):pos]
    return bytes(data)


# ---------------------------------------------------------------- drivers

@st.composite
def mail(draw) -> bytes:
    """One hostile mail, every choice a hypothesis draw."""
    return _mail(_Draws(draw))


@st.composite
def file_diff(draw) -> str:
    return _file_diff(_Draws(draw))


@st.composite
def mutated(draw, raw: bytes) -> bytes:
    """A real or generated mail with a few byte-level edits."""
    return _mutate(_Draws(draw), raw)


def mails_from(rnd: random.Random, count: int) -> list[bytes]:
    c = _Random(rnd)
    return [_mail(c) for _ in range(count)]


def mutations_from(rnd: random.Random, originals: list[bytes], count: int) -> list[bytes]:
    c = _Random(rnd)
    return [_mutate(c, c.pick(originals)) for _ in range(count)]


def diffs_from(rnd: random.Random, count: int) -> list[str]:
    c = _Random(rnd)
    return ["".join(_file_diff(c) for _ in range(c.int(1, 3))) for _ in range(count)]
