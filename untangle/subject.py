"""Parse patch subjects: "[RFC PATCH net-next v3 02/10] mm: do things"."""
import re
from dataclasses import dataclass, field

_REPLY = re.compile(r"^\s*((re|aw|sv|fwd?)\s*(\[\d+\])?\s*:\s*)+", re.I)
_BRACKETS = re.compile(r"^\s*\[([^\]]*)\]\s*")
_VERSION = re.compile(r"^v(\d+)$", re.I)
_COUNTER = re.compile(r"^(\d+)/(\d+)$")
_WORDS = {"PATCH", "RFC", "RESEND", "PULL", "GIT", "REPOST"}


@dataclass
class Subject:
    title: str
    version: int = 1
    number: int | None = None
    total: int | None = None
    rfc: bool = False
    resend: bool = False
    is_reply: bool = False
    prefixes: list[str] = field(default_factory=list)

    @property
    def is_cover(self) -> bool:
        return self.number == 0

    @property
    def has_patch_prefix(self) -> bool:
        return any(p.upper() in ("PATCH", "RFC") for p in self.prefixes) or self.number is not None


def _tokens(inner: str) -> list[str]:
    # "[net,v2,1/2]" (patchwork style) uses commas where others use spaces.
    return [t for t in re.split(r"[\s,]+", inner.strip()) if t]


def parse(raw: str) -> Subject:
    text = " ".join((raw or "").split())
    is_reply = bool(_REPLY.match(text))
    text = _REPLY.sub("", text)
    subject = Subject(title="", is_reply=is_reply)
    while True:
        m = _BRACKETS.match(text)
        if not m:
            break
        _read_prefix(subject, _tokens(m.group(1)))
        text = text[m.end():]
        # "Re:" can hide after the brackets: "[PATCH] Re: foo".
        if _REPLY.match(text):
            subject.is_reply = True
            text = _REPLY.sub("", text)
    subject.title = text.strip()
    return subject


# Numbers past a database integer column are not a version or a counter
# (found by tests/fuzz: "[PATCH v99999999999]" overflowed the insert).
_MAX_NUMBER = 2 ** 31 - 1


def _fits(m: re.Match | None) -> bool:
    return m is not None and all(int(g) <= _MAX_NUMBER for g in m.groups())


def _read_prefix(subject: Subject, tokens: list[str]) -> None:
    for tok in tokens:
        up = tok.upper()
        number = _VERSION.match(tok) or _COUNTER.match(tok)
        if number and not _fits(number):
            subject.prefixes.append(tok)
        elif m := _VERSION.match(tok):
            subject.version = int(m.group(1))
        elif m := _COUNTER.match(tok):
            subject.number, subject.total = int(m.group(1)), int(m.group(2))
        elif up.startswith("RFC"):
            subject.rfc = True
            subject.prefixes.append("RFC")
            if (m := re.match(r"^RFC[-_]?v(\d+)$", tok, re.I)) and _fits(m):
                subject.version = int(m.group(1))
        elif up in _WORDS:
            subject.resend |= up in ("RESEND", "REPOST")
            subject.prefixes.append(up)
        else:
            subject.prefixes.append(tok)
