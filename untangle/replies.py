"""What a reply to a patch says, by named heuristics: a review comment (it quotes
the diff and adds words of its own), an objection (a NAK, a bug/build/lockdep
report, a bot's report), or neither. Each verdict carries the rule that fired,
so a page can say why a reply was classed so (docs/review.md counts hits and misses).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .review import followup_trailers

MAX_BODY = 256 * 1024

COMMENT, OBJECTION, OTHER = "comment", "objection", "other"

_QUOTED = re.compile(r"^\s*(>\s?)+")
_DIFF_QUOTE = re.compile(r"^\s*(?:>\s?)+(?:@@ -\d|diff --git |\+\+\+ [ab/]|--- a/|index [0-9a-f]{7,}\.\.)")
_DIFF_LINE = re.compile(r"^\s*(?:>\s?)+[+-](?![+-]{2})\S?")
_ATTRIBUTION = re.compile(r"(wrote|writes|said|schrieb|a écrit)\s*:\s*$|^On .+[0-9].*$", re.I)
_SNIPPED = re.compile(r"^\s*[\[<(]?\s*(\.\.\.|…|snip(ped)?|trim(med)?|cut)\s*[\]>)]?\s*$", re.I)
_THANKS_ONLY = re.compile(r"^(thanks|thank you|cheers|regards|best regards|br|thx)[,.!]*$", re.I)
_GREETING = re.compile(r"^(hi|hello|hey|dear)\b.{0,40}[,!]?$", re.I)
_SIGNOFF = re.compile(r"^[-–~]*\s*[\w.'-]{1,24}$")  # "Paolo", "-Frank", "greg k-h" is two words

# Objection rules, in order: the first that matches names the verdict.
_NAK = re.compile(r"(?<![\w-])(NAK|NACK|Nacked|Nack)(?![\w-])")
_REPORTS = [
    # A word such as "lockdep" alone is talk about lockdep; these are what its splats print.
    ("lockdep report", re.compile(r"possible (circular|recursive) locking|inconsistent lock state|"
                                  r"suspicious RCU usage|lockdep (splat|warning|report|complain)\w*|"
                                  r"\blockdep (is )?(unhappy|triggers|fires)", re.I)),
    ("KASAN/UBSAN/KCSAN report", re.compile(r"\b(KASAN|UBSAN|KCSAN|KMSAN):")),
    ("kernel oops or BUG", re.compile(r"^\s*(BUG:|Oops: |Oops#|general protection fault|Kernel panic|"
                                      r"Unable to handle kernel|Internal error: Oops)", re.M)),
    ("kernel WARNING with a trace", re.compile(r"^\s*(WARNING: CPU:|Call Trace:)", re.M)),
    ("build error", re.compile(r"\S+\.[chS]:\d+(:\d+)?: (fatal )?error:|\bbuild (error|fail\w*)|"
                               r"\bfail(s|ed)? to (build|compile|link)|\bcompil\w+ (error|fail\w*)|"
                               r"undefined reference to|ERROR: modpost:", re.I)),
    ("crash or regression report", re.compile(r"\b(it|this|the kernel|the machine|the system|the guest) "
                                              r"(now )?(crashe[sd]|panics|panicked|hangs|hung|oopse[sd])\b|"
                                              r"\bcause[sd]? (a )?regression|\bregression (on|in|with) my\b|"
                                              r"^\s*not ok \d+ ", re.I | re.M)),
]
_REPORT_WORDS = {
    "lockdep report": ("locking", "lock state", "rcu usage", "lockdep"),
    "KASAN/UBSAN/KCSAN report": ("san:",),
    "kernel oops or BUG": ("bug:", "oops", "protection fault", "panic", "unable to handle"),
    "kernel WARNING with a trace": ("warning: cpu:", "call trace:"),
    "build error": ("error", "build", "fail", "compil", "undefined reference"),
    "crash or regression report": ("crash", "panic", "hang", "hung", "oops", "regression", "not ok"),
}
_APPLIED = re.compile(r"^(applied|queued|pushed|merged|picked up|thanks,? applied|applied,? thanks|"
                      r"this (patch|series|pull request) was applied|has been merged)\b", re.I)
# Senders whose every report is an objection until answered (merge and apply notices are not).
BOTS = re.compile(r"lkp@intel\.com|syzbot|syzkaller|kernelci|lkft|test robot", re.I)
_NOTICES = re.compile(r"pr-tracker-bot|patchwork-bot|patchwork-notify|b4-ty", re.I)


@dataclass(frozen=True)
class Verdict:
    kind: str  # comment, objection, other
    reason: str  # the rule that fired, in words
    quotes_diff: bool
    own_lines: int  # lines of the sender's own text (not quoted, no trailers, no greeting)


def own_text(body: str, trailers: list | None = None) -> list[str]:
    """The sender's own lines: not quoted, not the attribution, not the signature,
    not trailers, not greetings or thanks alone. trailers: followup_trailers(body), if known."""
    body = body[:MAX_BODY].split("\n-- \n", 1)[0]
    kinds = {t.kind.lower() for t in (followup_trailers(body) if trailers is None else trailers)}
    out = []
    for line in body.split("\n"):
        text = line.strip()
        if not text or text[0] == ">" or _QUOTED.match(line) or _SNIPPED.match(text):
            continue
        if _ATTRIBUTION.search(text) or _THANKS_ONLY.match(text) or _GREETING.match(text):
            continue
        if _SIGNOFF.match(text) and not text.endswith((":", "?")):
            continue
        head = text.split(":", 1)[0].lower()
        if ":" in text and head in kinds:
            continue
        out.append(text)
    return out


_DIFF_QUOTE_M = re.compile(_DIFF_QUOTE.pattern, re.M)
_DIFF_LINE_M = re.compile(_DIFF_LINE.pattern, re.M)


def quotes_diff(body: str) -> bool:
    body = body[:MAX_BODY]
    if ">" not in body:
        return False
    if _DIFF_QUOTE_M.search(body):
        return True
    lines = _DIFF_LINE_M.finditer(body)
    return next(lines, None) is not None and next(lines, None) is not None


def classify(body: str, from_email: str, author_email: str = "", trailers: list | None = None) -> Verdict:
    """One reply, classed by the first rule that fires (the patch's own author
    answering is never an objection nor a review comment). trailers: followup_trailers(body), if known."""
    if trailers is None:
        trailers = followup_trailers(body)
    mine = own_text(body, trailers)
    own = "\n".join(mine)
    quoted = quotes_diff(body)
    sender = (from_email or "").lower()
    if author_email and sender == author_email.lower():
        return Verdict(OTHER, "the author's own answer", quoted, len(mine))
    kinds = {t.kind.lower() for t in trailers}
    if _NOTICES.search(sender) or (mine and len(mine) <= 12 and any(_APPLIED.match(x) for x in mine[:3])):
        return Verdict(OTHER, "an applied or merged notice", quoted, len(mine))
    if "nacked-by" in kinds:
        return Verdict(OBJECTION, "gives a Nacked-by: trailer", quoted, len(mine))
    if _NAK.search(own):
        return Verdict(OBJECTION, "says NAK in its own text", quoted, len(mine))
    bot = bool(BOTS.search(sender))
    low = own.lower()
    for name, rule in _REPORTS:
        # Each rule runs only on text holding one of its words (most replies hold none).
        if any(w in low for w in _REPORT_WORDS[name]) and rule.search(own):
            return Verdict(OBJECTION, f"{name} in its own text" + (" (from a bot)" if bot else ""),
                           quoted, len(mine))
    if kinds & {"reported-by", "closes"} and (bot or not kinds & {"reviewed-by", "acked-by", "tested-by"}):
        return Verdict(OBJECTION, "asks for a Reported-by:/Closes: (a problem report)", quoted, len(mine))
    if bot and mine:
        return Verdict(OBJECTION, "a report from a bot", quoted, len(mine))
    if quoted and mine:
        return Verdict(COMMENT, "quotes the diff and adds its own text", quoted, len(mine))
    return Verdict(OTHER, "quotes no diff" if mine else "nothing of its own beyond trailers", quoted, len(mine))
