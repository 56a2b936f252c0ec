"""Am-ready mbox text: one mail per patch, review trailers folded into the
commit message (as b4 am does), in the order `git am` must apply them."""
import re
from dataclasses import dataclass, field
from email.header import Header
from email.utils import format_datetime, formataddr
from datetime import datetime

from untangle import msgid as msgids

FROM_LINE = "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001"
# Trailers a reviewer adds in a reply; Signed-off-by stays the author's own.
FOLDED = ("Reviewed-by", "Acked-by", "Tested-by", "Reported-by", "Suggested-by", "Cc")
_TRAILER_RE = re.compile(r"^[A-Za-z0-9-]+: \S")


@dataclass
class AmPatch:
    msgid: str
    subject: str
    author_name: str
    author_email: str
    date: datetime | None
    message: str
    diff: str
    trailers: list[str] = field(default_factory=list)  # "Reviewed-by: A <a@x>"


def fold_trailers(message: str, trailers: list[str]) -> str:
    """Append the trailers not already present to the message's trailer block."""
    body = message.strip("\n")
    present = {line.strip().lower() for line in body.split("\n")}
    new = [t for t in dict.fromkeys(trailers) if t.strip().lower() not in present]
    if not new:
        return body
    last = body.rsplit("\n\n", 1)[-1]
    in_block = body and all(_TRAILER_RE.match(x) for x in last.split("\n") if x)
    return body + ("\n" if in_block else "\n\n") + "\n".join(new)


def _header(value: str) -> str:
    return value if value.isascii() else Header(value, "utf-8").encode()


def _escape_from(text: str) -> str:
    # mboxrd: a body line starting with "From " (after any ">") gets one more ">".
    return re.sub(r"^(>*From )", r">\1", text, flags=re.M)


def mail(p: AmPatch) -> str:
    author = formataddr((_header(p.author_name), p.author_email)) if p.author_name else p.author_email
    head = [FROM_LINE, f"From: {author}", f"Subject: {_header(p.subject)}",
            f"Message-ID: {msgids.bracketed(p.msgid)}"]
    if p.date:
        head.append(f"Date: {format_datetime(p.date)}")
    head += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
             "Content-Transfer-Encoding: 8bit"]
    message = fold_trailers(p.message, p.trailers)
    diff = p.diff if p.diff.endswith("\n") else p.diff + "\n"
    body = f"{message}\n---\n{diff}" if message else f"---\n{diff}"
    return "\n".join(head) + "\n\n" + _escape_from(body) + "\n"


def mbox(patches: list[AmPatch]) -> str:
    return "".join(mail(p) for p in patches)
