"""Dependency discovery from kernel mails: formal tags, prose and blob ids.

Pure functions over decoded mail bodies (str) and plain dicts. No I/O.

Three sources of evidence, strongest first:

* tags      -- lines an author writes on purpose: ``base-commit:``, b4's
               ``prerequisite-*:``, ``Based-on:``/``Depends-on:``/``Supersedes:``.
* blobs     -- a patch whose pre-image blob is exactly what a patch of another
               revision produces can only apply on top of that revision.
* prose     -- "built on top of Fuad's v7 [1]", "Changes since v2 [4]", ...
               Every message link found in prose becomes an edge; the words
               nearest before the link decide its kind (depends-on,
               previous-revision, supersedes) and anything else is "related".

Edge targets are kept exactly as written (a link to patch 4 of a series keeps
that patch's msgid); mapping a patch msgid to its revision is the caller's job.
"""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import asdict, dataclass, field

from untangle import msgid as msgids

KINDS = ("depends-on", "previous-revision", "supersedes", "related", "base")
# When one target is named several times, the most specific reading wins.
_PRIORITY = {"depends-on": 4, "supersedes": 3, "previous-revision": 2, "base": 2, "related": 1}


@dataclass
class Edge:
    kind: str  # one of KINDS
    target: str
    target_type: str  # "msgid" | "change-id" | "patch-id" | "commit"
    how: str  # "tag" | "prose" | "blob" | "reply"
    evidence: str
    source_msgid: str
    version: int | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- message ids

_URL_RE = re.compile(r"https?://[^\s<>\"'`]+", re.I)
_ANGLE_MSGID_RE = re.compile(r"<([^<>\s@]+@[^<>\s@]+)>")
_SHA_RE = re.compile(r"\b[0-9a-f]{7,40}\b")
_ZERO_BLOB_RE = re.compile(r"^0+$")


def _looks_like_msgid(text: str) -> bool:
    local, _, domain = text.partition("@")
    return bool(local) and "." in domain and "/" not in text and " " not in text


def msgid_from_url(url: str) -> str | None:
    """The message-id a URL in a mail names (untangle.msgid.from_url), or None;
    only ids that look like one in prose count (a dotted domain, no '/')."""
    mid = msgids.from_url(url)
    return mid if mid and _looks_like_msgid(mid) else None


def _msgids_in_value(value: str) -> list[str]:
    """All msgids in a tag value: URLs first, then <msgid>, then bare tokens."""
    found: list[str] = []
    for url in _URL_RE.findall(value):
        mid = msgid_from_url(url)
        if mid:
            found.append(mid)
        value = value.replace(url, " ")
    found += [msgids.parse(m) for m in _ANGLE_MSGID_RE.findall(value)]
    value = _ANGLE_MSGID_RE.sub(" ", value)
    for token in value.split():
        token = msgids.parse(token.strip("(),;"))
        if "@" in token and _looks_like_msgid(token):
            found.append(token)
    return list(dict.fromkeys(found))


_GSE_STEM_RE = re.compile(r"^(\d{14}\.\d+)-\d+-(.+)$")  # git send-email
_COVER_STEM_RE = re.compile(r"^(?:cover|[0-9a-f]{40})\.(\d+\.git\..+)$")  # --cover-from-description


def _series_stem(msgid: str) -> str | None:
    m = _GSE_STEM_RE.match(msgid)
    if m:
        return m.group(1) + "|" + m.group(2)
    m = _COVER_STEM_RE.match(msgid)
    return m.group(1) if m else None


def is_same_posting(a: str, b: str) -> bool:
    """True when b is a itself or another mail of the same send-email run."""
    if a == b:
        return True
    stem = _series_stem(a)
    return stem is not None and stem == _series_stem(b)


# ---------------------------------------------------------------- body lines

_DIFF_START_RE = re.compile(r"^(diff --git |Index: |--- a/|--- /dev/null)")
_DIFF_LINE_RE = re.compile(
    r"^([ +\-@\\]|$|diff |index |new file mode|deleted file mode|old mode|new mode|"
    r"similarity index|dissimilarity index|rename (from|to) |copy (from|to) |Binary files )"
)
_ATTRIBUTION_RE = re.compile(r"(wrote|writes|said)\s*:\s*$", re.I)


def _commentary_lines(body: str) -> list[tuple[int, str]]:
    """(line number, text) of the lines a person wrote as mail text.

    Drops quoted lines ("> ..."), diff hunks (a link added to a file by a patch
    is not a dependency), reply attributions and everything after the "-- "
    signature marker. Blank lines are kept so paragraphs survive.
    """
    out: list[tuple[int, str]] = []
    in_diff = False
    for no, line in enumerate(body.splitlines()):
        if line == "-- ":
            break
        if in_diff:
            if _DIFF_LINE_RE.match(line):
                continue
            in_diff = False
        if _DIFF_START_RE.match(line):
            in_diff = True
            continue
        if line.lstrip().startswith(">") or _ATTRIBUTION_RE.search(line):
            out.append((no, ""))  # keep the paragraph break, drop the words
            continue
        out.append((no, line.rstrip()))
    return out


# ---------------------------------------------------------------- formal tags

_TAG_RE = re.compile(
    r"^\s*(base-commit|prerequisite-change-id|prerequisite-message-id|prerequisite-patch-id|"
    r"prerequisite-base-commit|based-on|depends-on|supersedes)\s*:\s*(.*?)\s*$",
    re.I,
)
_CHANGE_ID_RE = re.compile(r"^\s*change-id\s*:\s*(\S+)\s*$", re.I | re.M)
_CHANGE_VERSION_RE = re.compile(r"^(\S+?):v(\d+)$")


def extract_change_id(body: str) -> str | None:
    """b4's ``change-id:`` of a cover letter (identifies a series across revisions)."""
    m = _CHANGE_ID_RE.search(body)
    return m.group(1) if m else None


def _tag_edges(msgid: str, lines: list[tuple[int, str]]) -> tuple[list[Edge], set[int]]:
    edges: list[Edge] = []
    used: set[int] = set()
    last_change_id: str | None = None
    for no, line in lines:
        m = _TAG_RE.match(line)
        if not m:
            continue
        used.add(no)
        tag, value = m.group(1).lower(), m.group(2)
        new = _edges_for_tag(msgid, tag, value, line.strip(), last_change_id)
        if tag == "prerequisite-change-id" and new:
            last_change_id = new[0].target
        edges += new
    return edges, used


def _edges_for_tag(msgid: str, tag: str, value: str, line: str, change_id: str | None) -> list[Edge]:
    def edge(kind, target, ttype, version=None, **extra):
        return Edge(kind, target, ttype, "tag", line, msgid, version, extra)

    if tag in ("base-commit", "prerequisite-base-commit"):
        sha = _SHA_RE.search(value.lower())
        if not sha:
            return []
        extra = {"prerequisite": True} if tag.startswith("prerequisite") else {}
        return [edge("base", sha.group(0), "commit", **extra)]
    if tag == "prerequisite-change-id":
        m = _CHANGE_VERSION_RE.match(value.split()[0]) if value else None
        if m:
            return [edge("depends-on", m.group(1), "change-id", int(m.group(2)))]
        return [edge("depends-on", value.split()[0], "change-id")] if value else []
    if tag == "prerequisite-patch-id":
        sha = _SHA_RE.search(value.lower())
        if not sha:
            return []
        extra = {"change_id": change_id} if change_id else {}
        return [edge("depends-on", sha.group(0), "patch-id", **extra)]
    # prerequisite-message-id, based-on, depends-on, supersedes
    kind = "supersedes" if tag == "supersedes" else "depends-on"
    mids = _msgids_in_value(value)
    if mids:  # self-references are dropped by the caller
        return [edge(kind, m, "msgid") for m in mids]
    sha = _SHA_RE.search(value.lower())
    if sha and kind == "depends-on":  # "Based-on: <sha>" names a base commit
        return [edge("base", sha.group(0), "commit")]
    branch = _branch_in_value(value) if tag == "based-on" else None
    if branch:  # "based-on: livepatching.git, for-5.9/selftests-cleanup": a branch of a tree
        repo, ref = branch
        if _VERSION_TAG_RE.fullmatch(ref):
            return [edge("base", "v" + ref.lstrip("vV"), "commit", ref="tag")]
        return [edge("base", ref, "commit", ref="branch", **({"repo": repo} if repo else {}))]
    return []


_VERSION_TAG_RE = re.compile(r"v?\d+\.\d+(?:\.\d+)?(?:-rc\d+)?", re.I)


_REPO_RE = re.compile(r"^(?:\S+://\S+|[\w.-]+\.git)$", re.I)
_BRANCH_RE = re.compile(r"^[\w][\w.+-]*(?:/[\w.+-]+)*$")


def _branch_in_value(value: str) -> tuple[str | None, str] | None:
    """(repository, branch) of a Based-on: that names a branch, as people write it:
    "tree.git, for-5.9/topic", "tree.git for-next", "kvm/next"."""
    tokens = []
    for t in (t.strip(",;()") for t in value.split()):
        repo, dot_git, rest = t.partition(".git/")  # "tree.git/branch"
        tokens += [repo + ".git", rest] if dot_git and rest else [t] if t else []
    repos = [t for t in tokens if _REPO_RE.match(t)]
    refs = [t for t in tokens if t not in repos and _BRANCH_RE.match(t)]
    if len(refs) != 1 or len(tokens) > 4:
        return None  # prose, or nothing branch-like: not for a tag to guess
    return (repos[0] if repos else None), refs[0]


# ---------------------------------------------------------------- prose

_VERSION_RE = re.compile(r"\b(?:rfc\s*)?v(\d+)\b", re.I)
_NEGATION_RE = re.compile(r"(?:\bnot\b|n't\b|\bno\s+longer\b|\bnever\b|\bwithout\b)[^.;]{0,25}$", re.I)
_POSSESSIVE_RE = re.compile(r"\w['’]s\s*$")

# (kind, pattern). Reverse relations ("a base for [2]") say the *target* needs
# us: they become "related" with extra.reverse so they never pull the target
# into our chain. They are matched before the forward ones they overlap.
_REVERSE = [
    ("depends-on", r"\b(?:a\s+|the\s+)?(?:base|basis|foundation|prerequisite|pre-requisite|dependency)\s+for\b"),
    ("depends-on", r"\b(?:needed|required|used|depended\s+(?:up)?on|relied\s+(?:up)?on|built\s+upon|consumed)\s+by\b"),
    ("depends-on", r"\bin\s+preparation\s+for\b"),
    ("supersedes", r"\b(?:superseded|replaced|obsoleted)\s+by\b"),
]
_FORWARD = [
    ("depends-on", r"\b(?:re)?based\s+(?:up)?on(?:to)?\b"),
    ("depends-on", r"\bbuil(?:t|ds?|ding)\s+(?:up)?on\b"),
    ("depends-on", r"\bon\s+(?:the\s+)?top\s+of\b"),
    ("depends-on", r"\bdepend\w*\s+(?:up)?on\b"),
    ("depends-on", r"\b(?:requires?|required|requiring|needs?|needed|relies\s+on|rely\s+on)\b"),
    ("depends-on", r"\b(?:pre-?requisites?)\b"),
    ("supersedes", r"\b(?:supersedes?|superseding|obsoletes|replaces|replacement\s+for)\b"),
    ("previous-revision", r"\bchanges?\s+(?:since|from|in|to|vs\.?|versus|compared\s+to)\b"),
    ("previous-revision", r"\bsince\s+(?:the\s+)?(?:rfc\s*)?v\d+\b"),
    ("previous-revision", r"\b(?:previous|prior|earlier|last|older|original)\s+"
                          r"(?:version|revision|posting|iteration|spin|round|submission)s?\b"),
    ("previous-revision", r"\blink\s+to\s+(?:the\s+)?(?:rfc\s*)?v\d+\b"),
    ("previous-revision", r"\b(?:rfc\s*)?v\d+\s*(?:->|→|\.\.)\s*v?\d+\b"),
    ("previous-revision", r"\b(?:unchanged\s+from|respin\s+of|resend\s+of)\b"),
]
# Change-log headings people write, as a whole line or before a link: "Changes since v2",
# "Changes in v3:", "v2 -> v3:", "Since v1:", "Changelog:", "Change log from v2:",
# "Changes v2->v3:", "Changes from RFC v2", "Changes since last revision:", "v2 --> v3"
# (the variants found in a survey of linux-kselftest 2019-2021). Links under them name
# the previous revision.
_CL_VER = r"(?:rfc\s*)?(?:patch\s*)?v\d+|rfc|(?:the\s+)?(?:last|previous|prior|earlier)\s+" \
          r"(?:version|revision|posting|iteration|spin|round|submission|series)"
_CL_RANGE = rf"(?P<a>{_CL_VER})(?:\s*(?:->|-->|=>|→|\.\.|to|-)\s*(?P<b>{_CL_VER}))?"
_CHANGELOG_RE = re.compile(
    r"^\W{0,3}(?:(?:"
    r"(?:changes?|changed|change[\s-]?logs?|changelogs?|(?:revision|version)\s+history)"
    rf"(?:\s+(?P<prep>since|from|in|for|to|vs\.?|versus|compared\s+(?:to|with)|over|after))?"
    r"\s*|(?P<since>since)\s+)"
    rf"(?:{_CL_RANGE})?"
    r"|(?P<fa>(?:rfc\s*)?v\d+)\s*(?:->|-->|=>|→|\.\.)\s*(?P<fb>v?\d+)"
    r")\s*[:.]?\s*$",
    re.I)


def changelog_heading(text: str) -> tuple[bool, int | None]:
    """(is a change-log heading, version of the revision it compares with).

    "Changes since v2" and "v2 -> v3" compare with v2; "Changes in v3" and
    "Changes for v3" describe v3, so they compare with v2 too."""
    m = _CHANGELOG_RE.match(text.strip())
    if not m:
        return False, None
    if m.group("fa"):
        return True, _version_in(m.group("fa"))
    first = m.group("a")
    if m.group("since") and not first:
        return False, None
    version = _version_in(first) if first else None
    if version is not None and not m.group("b") and (m.group("prep") or "").lower() in ("in", "for"):
        version = version - 1 if version > 1 else None
    return True, version


_REVERSE_RE = [(k, re.compile(p, re.I)) for k, p in _REVERSE]
_FORWARD_RE = [(k, re.compile(p, re.I)) for k, p in _FORWARD]
# "v2 [3]", "the RFC[1]", "v5 cover letter [v5]", "v7: https://..." -- a bare
# revision name right before the link is our own earlier revision, unless it is
# someone else's ("Fuad's v7 [1]").
_WEAK_PREV_RE = re.compile(
    r"\b((?:rfc\s*)?v\d+|rfc)\s*(?:cover(?:\s+letter)?|series|posting|version)?\s*[:(\-=]*\s*$", re.I
)
_AFTER_DEP_RE = re.compile(
    r"^\W{0,3}(?:is|are|must\s+be|should\s+be)\s+(?:also\s+)?"
    r"(?:required|needed|a\s+prerequisite|prerequisites|applied\s+(?:first|before))\b",
    re.I,
)
# "[1] and [2]", "[1], and Bob's helpers [2]": a short noun phrase after a
# conjunction continues the previous reference's list.
_LIST_CONTINUATION_RE = re.compile(
    r"^[\s,;&/]*(?:(?:and|or|as\s+well\s+as|plus)\b(?:\s+(?!with\b|see\b|unlike\b|like\b)[\w'’\"-]+){0,5})?[\s,;:&/(]*$",
    re.I)
_REVISION_LABEL_RE = re.compile(r"^\s*(?:link\s+to\s+)?(?:the\s+)?(?:rfc\s*)?(?:patch\s*)?(?:v\d+|rfc)\s*$", re.I)

# "apply on top of 0ad2507d5d93", "Rebased on Linux 6.14-rc7", "based on kvm/next"
_BASE_PROSE_RE = re.compile(
    r"\b(?:(?:re)?based|appl(?:y|ies|ied)|buil(?:t|ds?)|sits?)\s+(?:(?:up)?on(?:to)?|on\s+top\s+of)\s+"
    r"(?:the\s+)?(?:latest\s+|current\s+|upstream\s+)?(?:linux\s+|commit\s+|tag\s+|branch\s+)?"
    r"(?P<tok>[0-9a-f]{7,40}\b|v?\d+\.\d+(?:\.\d+)?(?:-rc\d+)?\b|[a-z][\w.-]*/[\w.-]*\w"
    r"|[a-z][\w.]*-(?:next|unstable|stable|fixes|queue)\b)",
    re.I,
)

_BULLET_RE = re.compile(r"^\s*(?:[-*+•]|\d+[.)]|\(\w\))\s+")
_REFDEF_RE = re.compile(r"^\s*\[([^\[\]]{1,40})\]\s*:?\s*(https?://\S+)")
# "v7: https://...", "Link to v2: https://..." -- one labelled link per line
_LABEL_URL_RE = re.compile(r"^\s*(?:[-*+]\s+)?[^\s:\[][^:]{0,40}:\s*https?://\S+\s*$")
_CITE_RE = re.compile(r"\[([^\[\]]{1,40})\]")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\[(\"'])")


@dataclass
class _Sentence:
    text: str
    first: int  # line numbers (inclusive) in the body
    last: int
    lines: list[str]
    refdef: tuple[str, str] | None = None  # (label, url) of "[1] https://..."
    lead: "_Sentence | None" = None  # "This depends on:" introducing a list item

    def quote(self) -> str:
        return "\n".join(l.strip() for l in self.lines if l.strip())


@dataclass
class _Hit:
    target: str
    kind: str
    version: int | None
    evidence: str
    extra: dict
    order: int


def _label_key(label: str) -> str:
    return re.sub(r"\s+", "", label.lower())


def _blocks(lines: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """Paragraphs split further at bullets and reference definitions."""
    blocks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    for no, text in lines:
        if not text.strip():
            if current:
                blocks.append(current)
            current = []
            blocks.append([])  # blank marker: paragraph boundary
            continue
        alone = bool(_REFDEF_RE.match(text) or _LABEL_URL_RE.match(text))
        if current and (_BULLET_RE.match(text) or alone):
            blocks.append(current)
            current = []
        current.append((no, text))
        if alone:  # a reference definition or labelled link stands alone
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _split_sentences(block: list[tuple[int, str]]) -> list[_Sentence]:
    joined = ""
    starts: list[tuple[int, int, str]] = []  # (offset, line no, text)
    for no, text in block:
        starts.append((len(joined), no, text))
        joined += text.strip() + " "
    refdef = _REFDEF_RE.match(block[0][1])
    if refdef:
        return [_Sentence(joined.strip(), block[0][0], block[-1][0], [t for _, _, t in starts],
                          (refdef.group(1), refdef.group(2)))]
    offsets = [off for off, _, _ in starts]
    out: list[_Sentence] = []
    pos = 0
    for piece in _SENTENCE_END_RE.split(joined):
        begin = joined.index(piece, pos)
        end = begin + len(piece)
        pos = end
        # lines overlapping [begin, end): found by bisection, a paragraph can be long
        lo = max(bisect_right(offsets, begin) - 1, 0)
        hi = bisect_left(offsets, end)
        covered = [(no, text) for _, no, text in starts[lo:hi]]
        if piece.strip() and covered:
            out.append(_Sentence(piece.strip(), covered[0][0], covered[-1][0], [t for _, t in covered]))
    return out


def _sentences(lines: list[tuple[int, str]]) -> list[_Sentence]:
    """Sentences with their source lines; list items remember their lead-in.

    A lead-in is a sentence ending with ':' ("This series depends on:"); it
    carries over the bullets, reference definitions or bare links that follow
    it directly (one blank line after the lead-in is allowed).
    """
    out: list[_Sentence] = []
    lead: _Sentence | None = None
    blank_since_lead = 0
    for block in _blocks(lines):
        if not block:
            blank_since_lead += 1
            if blank_since_lead > 1 or (lead and out and out[-1] is not lead):
                lead = None
            continue
        sentences = _split_sentences(block)
        first_text = block[0][1]
        is_item = bool(_BULLET_RE.match(first_text) or _REFDEF_RE.match(first_text)
                       or _LABEL_URL_RE.match(first_text) or _URL_RE.match(first_text.strip()))
        if not is_item:
            lead = None
        for s in sentences:
            s.lead = lead if is_item else None
        out += sentences
        if not is_item and sentences and (sentences[-1].text.endswith(":")
                                          or changelog_heading(sentences[-1].text)[0]):
            lead = sentences[-1]
            blank_since_lead = 0
    return out


def _refs_in(sentence: _Sentence, refdefs: dict[str, tuple[str, _Sentence]]) -> list[tuple[int, int, str, _Sentence | None]]:
    """(start, end, msgid, refdef sentence or None) for every reference in a sentence."""
    text = sentence.text
    refs = []
    if sentence.refdef:
        url = sentence.refdef[1]
        mid = msgid_from_url(url)
        at = text.find(url)
        return [(at, at + len(url), mid, None)] if mid else []
    for m in _URL_RE.finditer(text):
        mid = msgid_from_url(m.group(0))
        if mid:
            refs.append((m.start(), m.end(), mid, None))
    for m in _ANGLE_MSGID_RE.finditer(text):
        mid = msgids.parse(m.group(1))
        # only real message ids: addresses ("Name <a@b.c>") have few digits
        if sum(c.isdigit() for c in mid.split("@")[0]) >= 6 and not _inside(m.start(), refs):
            refs.append((m.start(), m.end(), mid, None))
    for m in _CITE_RE.finditer(text):
        for label in m.group(1).split(","):
            hit = refdefs.get(_label_key(label))
            if hit:
                refs.append((m.start(), m.end(), hit[0], hit[1]))
    return sorted(refs, key=lambda r: (r[0], r[1]))


def _inside(pos: int, refs) -> bool:
    return any(s <= pos < e for s, e, _, _ in refs)


def _keyword_hits(text: str) -> list[tuple[int, str, bool, re.Match]]:
    """(end, kind, reverse, match) of every relation phrase, reverse ones shadowing forward ones."""
    hits = []
    taken: list[tuple[int, int]] = []
    for kind, rx in _REVERSE_RE:
        for m in rx.finditer(text):
            hits.append((m.end(), kind, True, m))
            taken.append((m.start(), m.end()))
    for kind, rx in _FORWARD_RE:
        for m in rx.finditer(text):
            if not any(s < m.end() and m.start() < e for s, e in taken):
                hits.append((m.end(), kind, False, m))
    return sorted(hits, key=lambda h: h[0])


def _version_in(text: str) -> int | None:
    found = _VERSION_RE.findall(text)
    return int(found[-1]) if found else None


def _classify(before: str, after: str) -> tuple[str, int | None, dict] | None:
    """Kind of a reference from the words before it (nearest phrase wins).

    Returns None when the words say nothing; the caller then tries fallbacks.
    """
    heading, version = changelog_heading(before)
    if heading:
        return "previous-revision", version, {}
    hits = _keyword_hits(before)
    weak = _WEAK_PREV_RE.search(before)
    if weak and _POSSESSIVE_RE.search(before[: weak.start()]):
        weak = None
    if hits:
        end, kind, reverse, m = hits[-1]
        tail = before[m.start():]
        if reverse:
            return "related", None, {"reverse": kind}
        if kind == "previous-revision":
            return kind, _version_in(tail) or _version_in(before), {}
        if _NEGATION_RE.search(before[: m.start()]):
            return "related", _version_in(tail), {"negated": kind}
        if kind == "depends-on" or not weak:
            return kind, _version_in(tail), {}
    if weak:
        return "previous-revision", _version_in(weak.group(0)), {}
    if _AFTER_DEP_RE.search(after):
        return "depends-on", None, {}
    return None


def _classify_label(label: str) -> tuple[str, int | None, dict] | None:
    if _REVISION_LABEL_RE.match(label):
        return "previous-revision", _version_in(label), {}
    return _classify(label, "")


def _sentence_hits(sentence: _Sentence, refdefs, order: int) -> list[_Hit]:
    hits: list[_Hit] = []
    refs = _refs_in(sentence, refdefs)
    text = sentence.text
    previous: tuple[str, int | None, dict] | None = None
    for i, (start, end, mid, refdef) in enumerate(refs):
        window_start = refs[i - 1][1] if i else 0
        window_end = refs[i + 1][0] if i + 1 < len(refs) else len(text)
        before, after = text[window_start:start], text[end:window_end]
        if sentence.refdef:
            result = _classify_label(sentence.refdef[0])
        else:
            result = _classify(before, after)
        if result is None and i and previous and _LIST_CONTINUATION_RE.match(before):
            result = previous  # "depends on [1] and [2]"
        if result is None and sentence.lead is not None:
            result = _classify(sentence.lead.text, "")
        evidence = sentence.quote()
        if sentence.lead is not None:
            evidence = sentence.lead.quote() + "\n" + evidence
        if refdef is not None:
            evidence += "\n" + refdef.quote()
        kind, version, extra = result or ("related", None, {})
        hits.append(_Hit(mid, kind, version, evidence, dict(extra), order))
        previous = result
    return hits


def _base_hits(sentence: _Sentence, order: int) -> list[_Hit]:
    """Base commits/tags/branches named in prose ("apply on top of 0ad2507d5d93")."""
    if sentence.refdef:
        return []
    urls = [(m.start(), m.end()) for m in _URL_RE.finditer(sentence.text)]
    hits = []
    for m in _BASE_PROSE_RE.finditer(sentence.text):
        tok = m.group("tok")
        if any(s <= m.start("tok") < e for s, e in urls) or _NEGATION_RE.search(sentence.text[: m.start()]):
            continue
        if re.fullmatch(r"[0-9a-f]{7,40}", tok, re.I):
            if not (re.search(r"\d", tok) and re.search(r"[a-f]", tok, re.I)):
                continue  # an English word or a plain number, not a sha
            target, ref = tok.lower(), "sha"
        elif re.fullmatch(r"v?\d+\.\d+(?:\.\d+)?(?:-rc\d+)?", tok, re.I):
            target, ref = "v" + tok.lstrip("vV"), "tag"
        else:
            target, ref = tok, "branch"
        hits.append(_Hit(target, "base", None, sentence.quote(), {"ref": ref}, order))
    return hits


def discover_text_edges(msgid: str, body: str, is_reply: bool = False) -> list[Edge]:
    """Edges stated in one decoded mail body (cover letter, patch or reply).

    Tags give how="tag"; prose gives how="prose" (how="reply" when the body is
    a reply). Quoted lines, diff hunks and signatures are never read; a link to
    this very posting (same msgid or same send-email run) is never an edge.
    Reverse statements ("serves as a base for [2]", "superseded by [3]") give
    "related" edges with extra["reverse"] = the relation seen from the target;
    negated ones ("no longer depends on [1]") get extra["negated"].
    Bases named in prose ("apply on top of 0ad2507d5d93", "Rebased on Linux
    6.14-rc7", "based on kvm/next") are kind "base", target_type "commit",
    extra["ref"] = "sha" | "tag" | "branch" (a hint next to base-commit:).
    """
    msgid = msgids.parse(msgid)
    lines = _commentary_lines(body)
    tag_edges, tag_lines = _tag_edges(msgid, lines)
    prose_lines = [(no, "" if no in tag_lines else text) for no, text in lines]
    sentences = _sentences(prose_lines)
    refdefs: dict[str, tuple[str, _Sentence]] = {}
    for s in sentences:
        if s.refdef:
            mid = msgid_from_url(s.refdef[1])
            if mid:
                refdefs.setdefault(_label_key(s.refdef[0]), (mid, s))

    hits: list[_Hit] = []
    for order, s in enumerate(sentences):
        hits += _sentence_hits(s, refdefs, order)
        hits += _base_hits(s, order)

    how = "reply" if is_reply else "prose"
    edges: list[Edge] = []
    seen: set[tuple] = set()  # a set, not a scan of edges: a mail may state thousands
    for e in tag_edges:  # the same tag written twice is one edge
        key = (e.kind, e.target, e.target_type)
        if key not in seen and not is_same_posting(msgid, e.target):
            seen.add(key)
            edges.append(e)
    best: dict[str, _Hit] = {}
    for hit in hits:
        if is_same_posting(msgid, hit.target):
            continue
        kept = best.get(hit.target)
        if kept is None or _PRIORITY[hit.kind] > _PRIORITY[kept.kind]:
            best[hit.target] = hit
        elif kept.version is None and hit.kind == kept.kind and hit.version is not None:
            kept.version = hit.version
    tagged = {(e.target, e.kind) for e in edges}
    tagged_targets = {e.target: _PRIORITY[e.kind] for e in edges}
    for hit in sorted(best.values(), key=lambda h: h.order):
        if (hit.target, hit.kind) in tagged or tagged_targets.get(hit.target, 0) >= _PRIORITY[hit.kind]:
            continue  # the author said it formally already
        ttype = "commit" if hit.kind == "base" else "msgid"
        edges.append(Edge(hit.kind, hit.target, ttype, how, hit.evidence, msgid, hit.version, hit.extra))
    return edges


# ---------------------------------------------------------------- blobs

def _blob_match(a: str, b: str) -> bool:
    """Abbreviated blob ids name the same blob when the shorter (>= 7) prefixes the longer."""
    a, b = a.lower(), b.lower()
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    return len(short) >= 7 and long_.startswith(short)


def _is_new_file(blob: str | None) -> bool:
    return not blob or bool(_ZERO_BLOB_RE.match(blob))


def _by_prefix(items: list, blob_of) -> dict[str, list]:
    """Items by the first 7 characters of their blob id, in their order."""
    index: dict[str, list] = {}
    for item in items:
        index.setdefault(blob_of(item)[:7].lower(), []).append(item)
    return index


def discover_blob_edges(revisions: list[dict], target_msgid: str) -> list[Edge]:
    """Depends-on edges proved by blob ids (``index old..new`` lines).

    For every file a patch of revision ``target_msgid`` changes, its pre-image
    blob is looked up among the post-images produced by patches of the other
    revisions. One producing revision -> a depends-on edge (how="blob").
    Several producing revisions (e.g. v7 and v8 of a series both produce it)
    -> ambiguous: if another, unambiguous blob of the same target revision
    already proves one of the candidates, that one gets the edge; otherwise
    each candidate gets a "related" edge with extra["ambiguous"] listing all of
    them, so nothing is applied on a guess. Pre-images produced inside the
    target revision itself, and new files (0000000), prove nothing.
    """
    target = next((r for r in revisions if r["msgid"] == target_msgid), None)
    if target is None:
        return []
    producers: list[tuple[str, str, str, str]] = []  # (revision, patch, path, new blob)
    for rev in revisions:
        if rev["msgid"] == target_msgid:
            continue
        for patch in rev.get("patches", []):
            for f in patch.get("files", []):
                if not _is_new_file(f.get("new")):
                    producers.append((rev["msgid"], patch["msgid"], f["path"], f["new"]))
    own_results = [f["new"] for p in target.get("patches", []) for f in p.get("files", [])
                   if not _is_new_file(f.get("new"))]

    # Matching ids share their first 7 characters: look only there (a patch changing
    # 5,000 files compared every file with every other, 25 million pairs).
    own_index = _by_prefix(own_results, lambda b: b)
    producer_index = _by_prefix(producers, lambda p: p[3])
    found: list[tuple[dict, dict, list[tuple[str, str, str, str]]]] = []
    for patch in target.get("patches", []):
        for f in patch.get("files", []):
            old = f.get("old")
            if _is_new_file(old) or any(_blob_match(old, b) for b in own_index.get(old[:7].lower(), ())):
                continue
            cands = [p for p in producer_index.get(old[:7].lower(), ()) if _blob_match(old, p[3])]
            if cands:
                found.append((patch, f, cands))

    proved = {c[0][0] for _, _, c in found if len({p[0] for p in c}) == 1}
    edges: list[Edge] = []
    for patch, f, cands in found:
        revs = sorted({p[0] for p in cands})
        chosen = revs if len(revs) == 1 else sorted(set(revs) & proved)
        if len(chosen) == 1:
            producer = next(p for p in cands if p[0] == chosen[0])
            note = "" if len(revs) == 1 else f" (also produced by {', '.join(r for r in revs if r != chosen[0])}; " \
                                              f"{chosen[0]} is proved by another blob)"
            edges.append(Edge(
                "depends-on", chosen[0], "msgid", "blob",
                f"{f['path']} starts from {f['old']}, produced by {producer[1]}{note}",
                patch["msgid"], None,
                {"file": f["path"], "blob": f["old"], "patch": producer[1]},
            ))
            continue
        for rev in revs:
            producer = next(p for p in cands if p[0] == rev)
            edges.append(Edge(
                "related", rev, "msgid", "blob",
                f"{f['path']} starts from {f['old']}, produced identically by {len(revs)} revisions: "
                + ", ".join(revs),
                patch["msgid"], None,
                {"file": f["path"], "blob": f["old"], "patch": producer[1], "ambiguous": revs},
            ))
    return edges
