"""Line provenance and consolidated views of an applied chain.

An ApplyRun made one commit per patch (applied[] = [{"msgid", "commit"}]); every
commit maps back to its mail: patch msgid -> Message -> Patch -> Revision -> Series.
Who wrote a line is git's answer (gitrepo_blame.blame over base..head), never a guess
from the diffs. Everything keyed by shas is immutable, so it is memoised.
"""
from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings

from untangle import gitrepo_blame, gitrepo_read, gitrepo_repo
from untangle import address, gitrepo_patch, msgid as msgids

from ..models import ApplyRun, Dependency, Patch, Revision, Tree

# Distinct, readable on white; a chain longer than this reuses colours.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1",
           "#76b7b2", "#edc948", "#9c755f", "#ff9da7", "#8cd17d")
RESERVED = ("diff", "series", "-")  # first path segments the URLs use for other views
MAX_HIGHLIGHT = 2_000_000  # bytes; bigger files are shown plain (Pygments is linear but slow)


class BrowseError(Exception):
    """Something a reviewer asked for that the chain cannot show (404-worthy)."""


@dataclass
class PatchRef:
    """One chain commit and the mail it was made from."""
    commit: str
    parent: str
    msgid: str
    number: int | None = None
    total: int | None = None
    subject: str = ""
    author: str = ""
    date: datetime | None = None
    revision: "RevisionRef | None" = None
    files: tuple[str, ...] | None = None  # paths the patch's diff names (both sides of a rename)

    @property
    def label(self) -> str:
        rev = self.revision
        v = f"v{rev.version} " if rev else ""
        n = f"{self.number}/{self.total}" if self.number else "?"
        return f"{v}{n}"


@dataclass
class RevisionRef:
    """One revision of the chain, with its own commits (a contiguous run of them)."""
    msgid: str
    title: str
    version: int
    series_id: int | None
    author: str
    colour: int
    obj: Revision | None = None
    patches: list[PatchRef] = field(default_factory=list)

    @property
    def before(self) -> str | None:
        """The commit the revision was applied on (its dependencies' head)."""
        return self.patches[0].parent if self.patches else None

    @property
    def after(self) -> str | None:
        return self.patches[-1].commit if self.patches else None

    @property
    def colour_hex(self) -> str:
        return PALETTE[self.colour % len(PALETTE)]

    @property
    def css(self) -> str:
        """The class that paints this revision's colour (see templates/browse/_layout.html)."""
        return f"sc{self.colour % len(PALETTE)}"


@dataclass
class Chain:
    run: ApplyRun
    repo: Path
    base: str
    head: str
    revisions: list[RevisionRef]
    by_commit: dict[str, PatchRef]

    @property
    def patches(self) -> list[PatchRef]:
        return [p for r in self.revisions for p in r.patches]

    def revision(self, msgid: str) -> RevisionRef:
        for r in self.revisions:
            if r.msgid == msgid:
                return r
        raise BrowseError(f"<{msgid}> is not part of this chain")


def lore_url(msgid: str) -> str:
    return msgids.lore_url(msgid, settings.LORE_URL)


# ---------------------------------------------------------------- loading a chain

def repo_of(run: ApplyRun) -> Path:
    """This host's mirror of the run's tree, holding the run's commits (imported from the
    database when another host made them: services/results.py)."""
    from .results import ResultMissing, local_mirror
    from .trees import TreeError
    try:
        return local_mirror(run)
    except (ResultMissing, TreeError) as exc:
        raise BrowseError(str(exc)) from exc


def browsable_runs():
    """Runs with a commit to show: applied ones, and partial ones that got somewhere."""
    return ApplyRun.objects.exclude(head="").exclude(base="").select_related("tree", "root")


def run_for_head(sha: str) -> ApplyRun:
    """The newest run whose head is sha (a unique prefix of 7+ hex digits also works)."""
    sha = sha.lower()
    if not re.fullmatch(r"[0-9a-f]{7,64}", sha):
        raise BrowseError(f"{sha!r} is not a commit id")
    runs = list(browsable_runs().filter(head__startswith=sha).order_by("-created")[:20])
    heads = {r.head for r in runs}
    if not runs:
        raise BrowseError(f"no applied chain has head {sha}")
    if len(heads) > 1:
        raise BrowseError(f"{sha} is ambiguous")
    applied = [r for r in runs if r.status == ApplyRun.APPLIED]
    return (applied or runs)[0]


def load_chain(run: ApplyRun) -> Chain:
    if not run.head or not run.base:
        raise BrowseError(f"apply run {run.id} has no commits to show ({run.status})")
    repo = repo_of(run)
    msgids = [a["msgid"] for a in run.applied]
    patches = {p.message.msgid: p for p in Patch.objects.filter(message__msgid__in=msgids)
               .select_related("message", "revision__series").prefetch_related("files")}
    order = {m: i for i, m in enumerate(run.chain)}
    revs: dict[str, RevisionRef] = {}
    by_commit: dict[str, PatchRef] = {}
    parent = run.base
    for entry in run.applied:
        p = patches.get(entry["msgid"])
        ref = _patch_ref(entry, parent, p)
        rev = p.revision if p is not None else None
        key = rev.msgid if rev is not None else "?"
        if key not in revs:
            revs[key] = _revision_ref(rev, order.get(key, len(order) + len(revs)))
        ref.revision = revs[key]
        revs[key].patches.append(ref)
        by_commit[ref.commit] = ref
        parent = ref.commit
    ordered = sorted(revs.values(), key=lambda r: r.colour)
    for i, r in enumerate(ordered):
        r.colour = i  # colours follow the chain order, whatever the numbering gaps
    return Chain(run=run, repo=repo, base=run.base, head=run.head, revisions=ordered,
                 by_commit=by_commit)


def _patch_ref(entry: dict, parent: str, p: Patch | None) -> PatchRef:
    if p is None:
        return PatchRef(commit=entry["commit"], parent=parent, msgid=entry["msgid"])
    total = p.revision.expected if p.revision_id else None
    author = address.display(p.author_name, p.author_email)
    # A copy leaves its source alone; a rename removes it.
    files = {x for f in p.files.all() for x in (f.path, f.old_path if f.status != "copied" else None) if x}
    return PatchRef(commit=entry["commit"], parent=parent, msgid=entry["msgid"], number=p.number,
                    total=total, subject=p.subject, author=author, date=p.date,
                    files=tuple(sorted(files)) if files else None)


def _revision_ref(rev: Revision | None, position: int) -> RevisionRef:
    if rev is None:
        return RevisionRef(msgid="?", title="(patches not in the database)", version=0,
                           series_id=None, author="", colour=position)
    return RevisionRef(msgid=rev.msgid, title=rev.title, version=rev.version,
                       series_id=rev.series_id, author=rev.author, colour=position, obj=rev)


# ---------------------------------------------------------------- trees

@functools.lru_cache(maxsize=64)
def _touched(repo: str, commits: tuple[tuple[str, str], ...]) -> dict[str, tuple[str, ...]]:
    """path -> commits (of the parent, commit pairs given) that changed it; memoised by shas."""
    out: dict[str, list[str]] = {}
    for parent, commit in commits:
        for path in gitrepo_read.changed_files(Path(repo), parent, commit):
            out.setdefault(path, []).append(commit)
    return {k: tuple(v) for k, v in out.items()}


@functools.lru_cache(maxsize=64)
def _changed(repo: str, base: str, head: str) -> frozenset[str]:
    return frozenset(gitrepo_read.changed_files(Path(repo), base, head))


def touched_paths(chain: Chain) -> dict[str, list[PatchRef]]:
    """Every path a chain commit changed -> the patches that changed it, in order.

    A chain commit is its patch applied, nothing else, so the files its diff names
    (stored at ingest) are the files the commit changed. Asking git instead costs a
    whole-tree diff per commit (~50 ms each on a kernel tree); git is asked only for
    commits whose mail is not in the database.
    """
    out: dict[str, list[PatchRef]] = {}
    unknown = tuple((p.parent, p.commit) for p in chain.patches if p.files is None)
    from_git = _touched(str(chain.repo), unknown) if unknown else {}
    for p in chain.patches:
        paths = p.files if p.files is not None else [f for f, cs in from_git.items() if p.commit in cs]
        for path in paths:
            out.setdefault(path, []).append(p)
    return dict(sorted(out.items()))


def changed_paths(chain: Chain) -> frozenset[str]:
    """Paths that differ between base and head (a path added then removed is not one)."""
    return _changed(str(chain.repo), chain.base, chain.head)


def clean_path(path: str) -> str:
    parts = [p for p in (path or "").strip("/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BrowseError(f"bad path {path!r}")
    return "/".join(parts)


def path_kind(chain: Chain, path: str) -> str:
    """"tree" or "blob" for path at the chain's head; BrowseError if absent."""
    if not path:
        return "tree"
    parent, _, name = path.rpartition("/")
    for e in _listing(str(chain.repo), chain.head, parent):
        if e["name"] == name:
            return "tree" if e["type"] == "tree" else e["type"]
    raise BrowseError(f"{path} does not exist at {chain.head[:12]}")


@functools.lru_cache(maxsize=256)
def _listing(repo: str, head: str, path: str) -> tuple[dict, ...]:
    try:
        return tuple(gitrepo_read.list_tree(Path(repo), head, path))
    except (FileNotFoundError, NotADirectoryError, KeyError) as e:
        raise BrowseError(f"{path or '/'} is not a directory at {head[:12]}") from e


def listing(chain: Chain, path: str, only_changed: bool = False) -> list[dict]:
    """Entries of directory path at head, directories first; each with "changed"
    (the chain changes it or something under it) and "revisions" (who touched it)."""
    changed = changed_paths(chain)
    touched = touched_paths(chain)
    under: dict[str, set[int]] = {}
    for p, refs in touched.items():
        cols = {r.revision.colour for r in refs if r.revision}
        parts = p.split("/")
        for i in range(1, len(parts) + 1):
            under.setdefault("/".join(parts[:i]), set()).update(cols)
    changed_prefixes = {"/".join(p.split("/")[:i]) for p in changed for i in range(1, p.count("/") + 2)}
    by_colour = {r.colour: r for r in chain.revisions}
    out = []
    for e in _listing(str(chain.repo), chain.head, path):
        entry = dict(e, changed=e["path"] in changed_prefixes,
                     revisions=[by_colour[c] for c in sorted(under.get(e["path"], ()))])
        if only_changed and not entry["changed"]:
            continue
        out.append(entry)
    out.sort(key=lambda e: (e["type"] != "tree", e["name"]))
    return out


# ---------------------------------------------------------------- provenance

@functools.lru_cache(maxsize=128)
def _blame(repo: str, base: str, head: str, path: str) -> tuple[str | None, ...]:
    return tuple(gitrepo_blame.blame(Path(repo), base, head, path))


def line_owners(chain: Chain, path: str) -> list[PatchRef | None]:
    """Per line of path at head: the patch that introduced it, None for base."""
    try:
        shas = _blame(str(chain.repo), chain.base, chain.head, path)
    except FileNotFoundError as e:
        raise BrowseError(str(e)) from e
    unknown = {s for s in shas if s is not None and s not in chain.by_commit}
    if unknown:
        # blame only names commits in base..head, which are all chain commits.
        raise BrowseError(f"blame named commits outside the chain: {sorted(unknown)[:3]}")
    return [chain.by_commit[s] if s else None for s in shas]


def read_text(chain: Chain, path: str) -> tuple[str | None, int]:
    """(decoded text or None if binary, size in bytes) of path at head."""
    try:
        data = gitrepo_read.read_file(chain.repo, chain.head, path)
    except FileNotFoundError as e:
        raise BrowseError(str(e)) from e
    if b"\0" in data[:8000]:
        return None, len(data)
    return data.decode("utf-8", errors="replace"), len(data)


def provenance(chain: Chain, path: str) -> dict:
    """The CLI contract: {"path", "head", "lines": [{"n", "msgid", "series"}]}."""
    owners = line_owners(chain, path)
    lines = [{"n": n, "msgid": o.msgid if o else None,
              "series": o.revision.msgid if o and o.revision and o.revision.obj else None}
             for n, o in enumerate(owners, 1)]
    return {"path": path, "head": chain.head, "lines": lines}


# ---------------------------------------------------------------- diffs

def patch_diffs(chain: Chain) -> list[tuple[RevisionRef, list[tuple[PatchRef, str]]]]:
    """The chain against its base, one diff per patch, grouped by revision."""
    return [(r, [(p, _diff(str(chain.repo), p.parent, p.commit)) for p in r.patches])
            for r in chain.revisions]


def whole_diff(chain: Chain) -> str:
    return _diff(str(chain.repo), chain.base, chain.head)


def own_diff(chain: Chain, rev_msgid: str) -> tuple[RevisionRef, str]:
    """What one revision itself changes, on top of what comes before it in the chain."""
    rev = chain.revision(rev_msgid)
    return rev, _diff(str(chain.repo), rev.before, rev.after)


@functools.lru_cache(maxsize=64)
def _diff(repo: str, a: str, b: str) -> str:
    return gitrepo_read.diff(Path(repo), a, b)


# ---------------------------------------------------------------- versions

def runs_containing(rev: Revision, tree: Tree | None = None) -> list[ApplyRun]:
    """Browsable runs whose chain holds rev, newest first. The database picks the runs
    whose chain names rev (a series page must not read every run's JSON); whether every
    revision up to rev applied is checked here."""
    qs = browsable_runs().filter(integration_of__isnull=True).order_by("-created")
    if tree is not None:
        qs = qs.filter(tree=tree)
    rooted = [r for r in qs.filter(root=rev)[:20] if _applied_all(r, rev.msgid)]
    if rooted:
        return sorted(rooted, key=lambda r: r.status != ApplyRun.APPLIED)
    return [r for r in _chain_names(qs, rev.msgid)[:500] if _applied_all(r, rev.msgid)]


def _chain_names(qs, msgid: str):
    """Runs whose `chain` (a JSON list of msgids) holds msgid, in SQL: SQLite's JSON field
    has no `contains` lookup, its json_each does the same."""
    from django.db import connection
    if connection.vendor == "postgresql":
        return qs.filter(chain__contains=[msgid])
    return qs.extra(where=["EXISTS (SELECT 1 FROM json_each(reviewapp_applyrun.chain) AS e WHERE e.value = %s)"],
                    params=[msgid])


def _applied_all(run: ApplyRun, rev_msgid: str) -> bool:
    """True when rev is in the chain and every revision up to it applied."""
    if rev_msgid not in run.chain:
        return False
    if run.status == ApplyRun.APPLIED:
        return True
    wanted = set(Patch.objects.filter(revision__msgid__in=run.chain[:run.chain.index(rev_msgid) + 1])
                 .values_list("message__msgid", flat=True))
    return wanted <= {a["msgid"] for a in run.applied}


def chain_with(rev: Revision, tree: Tree, apply_if_missing: bool = True) -> Chain:
    """A chain on tree that contains rev's own commits; applies it when none exists."""
    runs = runs_containing(rev, tree)
    if not runs and apply_if_missing:
        from .apply import apply
        run = apply(rev, tree)
        if run.status != ApplyRun.APPLIED:
            raise BrowseError(f"{rev} does not apply on {tree.name}: {run.status} {run.error}".strip())
        runs = [run]
    if not runs:
        raise BrowseError(f"{rev} has not been applied on {tree.name}")
    return load_chain(runs[0])


def range_diff(old: Revision, new: Revision, tree: Tree, apply_if_missing: bool = True) -> dict:
    """git range-diff of two revisions' own commits, each on top of its own dependencies."""
    a, b = chain_with(old, tree, apply_if_missing), chain_with(new, tree, apply_if_missing)
    ra, rb = a.revision(old.msgid), b.revision(new.msgid)
    raw = gitrepo_read.range_diff(a.repo, ra.before, ra.after, rb.before, rb.after)
    return {"old": ra, "new": rb, "old_chain": a, "new_chain": b, "raw": raw,
            "text": quiet_link_trailers(raw)}


def newest_of(rev: Revision) -> Revision:
    """The newest revision of rev's series, complete ones first (rev if none is newer)."""
    family = Revision.objects.filter(series_id=rev.series_id).live()
    newer = [r for r in family if _later(r, rev)]
    complete = [r for r in newer if r.complete] or newer
    return max(complete, key=lambda r: (r.version, _ts(r)), default=rev)


def _ts(r: Revision) -> float:
    return r.date.timestamp() if r.date else 0.0


def _later(r: Revision, than: Revision) -> bool:
    return r.id != than.id and (r.version, _ts(r)) > (than.version, _ts(than))


def dependency_updates(rev: Revision, chain: Chain | None = None) -> list[tuple[Revision, Revision]]:
    """(declared, newest) for each revision rev builds on that has a newer revision:
    the ones in its applied chain (before it), and the ones its mails name."""
    declared: dict[int, Revision] = {}
    if chain is not None:
        for r in chain.revisions:
            if r.obj is not None and r.obj.id != rev.id and r.obj.series_id != rev.series_id:
                declared[r.obj.id] = r.obj
    deps = Dependency.objects.filter(source=rev, kind=Dependency.DEPENDS_ON,
                                     target_revision__isnull=False).select_related("target_revision")
    for d in deps:
        t = d.target_revision
        if t.series_id != rev.series_id:
            declared.setdefault(t.id, t)
    out = []
    for dep in declared.values():
        newest = newest_of(dep)
        if newest.id != dep.id:
            out.append((dep, newest))
    return out


# ---------------------------------------------------------------- highlighting

def highlight(text: str, path: str) -> list[str]:
    """One HTML string per line ("\\n"-separated, as git counts lines), Pygments
    token classes on spans; plain escaped lines when no lexer fits."""
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    plain = [html.escape(x) for x in lines]
    if len(text) > MAX_HIGHLIGHT:
        return plain
    lexer = _lexer(path, text)
    if lexer is None:
        return plain
    out: list[list[str]] = [[]]
    for ttype, value in lexer.get_tokens(text):
        cls = _css_class(ttype)
        for i, part in enumerate(value.split("\n")):
            if i:
                out.append([])
            if part:
                esc = html.escape(part)
                out[-1].append(f'<span class="{cls}">{esc}</span>' if cls else esc)
    rendered = ["".join(x) for x in out][:len(lines)]
    # Pygments folds "\r\n" and lone "\r"; then its lines are not git's: show plain.
    return rendered if len(rendered) == len(lines) and "\r" not in text else plain


def _lexer(path: str, text: str):
    from pygments.lexers import get_lexer_for_filename, guess_lexer_for_filename
    from pygments.util import ClassNotFound
    opts = {"stripnl": False, "stripall": False, "ensurenl": False, "tabsize": 0}
    name = path.rsplit("/", 1)[-1]
    try:
        return get_lexer_for_filename(name, text[:4096], **opts)
    except ClassNotFound:
        pass
    if name in ("Makefile", "Kbuild", "Kconfig") or name.startswith(("Makefile.", "Kconfig.")):
        from pygments.lexers import get_lexer_by_name
        return get_lexer_by_name("make" if name.startswith(("Makefile", "Kbuild")) else "kconfig", **opts)
    try:
        return guess_lexer_for_filename(name, text[:4096], **opts) if text.startswith("#!") else None
    except ClassNotFound:
        return None


@functools.lru_cache(maxsize=512)
def _css_class(ttype) -> str:
    from pygments.token import STANDARD_TYPES
    while ttype is not None:
        cls = STANDARD_TYPES.get(ttype)
        if cls is not None:
            return cls
        ttype = ttype.parent
    return ""


# ---------------------------------------------------------------- diff text to HTML

def diff_lines(text: str) -> list[tuple[str, str]]:
    """(css class, line) for a unified diff: add, del, hunk, meta or ''."""
    return _classified(text, _diff_class)


def _diff_class(line: str) -> str:
    if line.startswith(("diff --git", "index ", "--- ", "+++ ", "new file", "deleted file",
                        "rename ", "similarity ", "old mode", "new mode", "Binary files")):
        return "meta"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "add"
    if line.startswith("-"):
        return "del"
    return ""


_RD_HEADER = re.compile(r"^\s*(-|\d+):\s+(-+|[0-9a-f]+) ([=!<>]) (-|\d+):\s+(-+|[0-9a-f]+)")
_RD_VERDICT = {"=": "rd-same", "!": "rd-changed", "<": "rd-removed", ">": "rd-added"}


def range_diff_lines(text: str) -> list[tuple[str, str]]:
    """(css class, line) for git range-diff output: pair headers by verdict
    (same, changed, removed, added), the inner diff-of-diffs by its outer sign."""
    return _classified(text, _range_diff_class)


def _range_diff_class(line: str) -> str:
    if m := _RD_HEADER.match(line):
        return _RD_VERDICT[m.group(3)]
    if line.startswith("    @@"):
        return "hunk"
    if line.startswith("    +"):
        return "add"
    if line.startswith("    -"):
        return "del"
    return ""


def _classified(text: str, classify) -> list[tuple[str, str]]:
    out = [(classify(line), line) for line in text.split("\n")]
    if out and out[-1] == ("", ""):
        out.pop()
    return out


def quiet_link_trailers(text: str) -> str:
    """Drop range-diff hunks whose only change is the Link: trailer the applier adds
    (it names each posting's own msgid, so it always differs); a pair left with no
    other change is then marked "=" as git would."""
    blocks: list[list[str]] = []
    for line in text.split("\n"):
        if not line.startswith("    ") and _RD_HEADER.match(line) or not blocks:
            blocks.append([line])
        else:
            blocks[-1].append(line)
    out: list[str] = []
    for block in blocks:
        head, body = block[0], block[1:]
        hunks: list[list[str]] = [[]]
        for line in body:
            if line.startswith("    @@"):
                hunks.append([])
            hunks[-1].append(line)
        kept = [hunks[0]] + [h for h in hunks[1:] if not _only_link_change(h)]
        m = _RD_HEADER.match(head)
        if m and m.group(3) == "!" and len(kept) == 1 and not any(x.strip() for x in kept[0]):
            head = head[:m.start(3)] + "=" + head[m.end(3):]
        out.append(head)
        out.extend(line for h in kept for line in h)
    return "\n".join(out)


def _only_link_change(hunk: list[str]) -> bool:
    if not hunk or not hunk[0].startswith("    @@ Commit message"):
        return False
    changed = [x for x in hunk[1:] if x.startswith(("    -", "    +"))]
    prefix = re.escape(gitrepo_repo.LINK_PREFIX)
    return bool(changed) and all(re.match(rf"^    [-+]\s*Link: {prefix}\S+$", x) for x in changed)


def file_sections(text: str) -> list[tuple[str, str]]:
    """Split a unified diff into (path, diff of that file)."""
    parts = re.split(r"(?m)^(?=diff --git )", text)
    out = []
    for part in parts:
        if not part.startswith("diff --git "):
            continue
        _, new = gitrepo_patch.header_paths(part.split("\n", 1)[0])
        out.append((new or "?", part))
    return out
