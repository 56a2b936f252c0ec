"""Whether two applied chains can live in one tree, and one tree of all that fit: three-way
merges in memory (no index file, no worktree), file by file over the paths both sides
changed, with the conflicting hunks of each file as both sides wrote them; and the replay of
chains commit by commit onto a stack (the integration branch). Costs follow the changes,
not the tree's 80k files. Bounded: at most max_files files and max_lines lines a side of a
hunk are kept; the counts are kept whole."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from untangle.gitrepo_apply import _write_tree
from untangle.gitrepo_repo import COMMITTER_EMAIL, COMMITTER_NAME, MODE_TREE, _open, _peel_commit


@dataclass
class ConflictHunk:
    ours: list[str]
    theirs: list[str]
    truncated: bool = False


@dataclass
class ConflictFile:
    path: str
    kind: str = "content"  # content | modify/delete | add/add
    hunks: list[ConflictHunk] = field(default_factory=list)
    hunk_count: int = 0


@dataclass
class MergeCheck:
    clean: bool
    files: list[ConflictFile] = field(default_factory=list)
    file_count: int = 0
    tree: str | None = None  # the merged tree when clean

    @property
    def hunk_count(self) -> int:
        return sum(f.hunk_count for f in self.files)


class MergeError(ValueError):
    """A commit to merge is not in the repository."""


def merge_check(repo: Path | str, ancestor: str, ours: str, theirs: str,
                max_files: int = 100, max_lines: int = 80) -> MergeCheck:
    """Three-way merge of the trees of ours and theirs over ancestor's, file by file: only
    the paths both sides changed are merged (a kernel tree has 80k files; a whole-tree
    merge costs 0.1 s, this a few ms). Renames are not followed: a file renamed on one side
    and changed on the other is a modify/delete conflict."""
    r = _open(repo)
    trees = []
    for rev in (ancestor, ours, theirs):
        commit = _peel_commit(r, rev)
        if commit is None:
            raise MergeError(f"{rev} is not a commit of {repo}")
        trees.append(commit.tree)
    base, mine, other = trees
    changed_mine = _changed_paths(r, base, mine)
    changed_other = _changed_paths(r, base, other)
    files, count = [], 0
    for path in sorted(set(changed_mine) & set(changed_other)):
        b, m = changed_mine[path]
        o = changed_other[path][1]
        if _same(m, o):
            continue
        merged = _merge_blobs(r, path, b, m, o)
        if merged is not None:
            continue
        count += 1
        if len(files) < max_files:
            files.append(_conflict_file(r, _entry(path, b), _entry(path, m), _entry(path, o), max_lines))
    return MergeCheck(not count, files, count)


Blob = tuple  # (oid, filemode) of a blob at a path, or None where there is none


def _same(a: Blob | None, b: Blob | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and a[0] == b[0])


def _entry(path: str, blob: Blob | None):
    return pygit2.IndexEntry(path, blob[0], blob[1]) if blob is not None else None


def _merge_blobs(r: pygit2.Repository, path: str, base: Blob | None, mine: Blob | None,
                 other: Blob | None) -> Blob | None:
    """The merged blob of one path both sides changed, or None when it conflicts."""
    if mine is None or other is None or base is None:
        return None  # modify/delete, add/add: a conflict for a reviewer to see
    result = r.merge_file_from_index(_entry(path, base), _entry(path, mine), _entry(path, other))
    if not result.automergeable:
        return None
    return (r.create_blob(result.contents.encode("utf-8", "surrogateescape")), mine[1])


def _changed_paths(r: pygit2.Repository, a: pygit2.Tree | None, b: pygit2.Tree | None,
                   prefix: str = "") -> dict[str, tuple[Blob | None, Blob | None]]:
    """path -> (blob in a, blob in b) for every blob path that differs; subtrees whose ids
    are equal are not entered, so the cost follows the change, not the tree."""
    out: dict[str, tuple[Blob | None, Blob | None]] = {}
    if a is not None and b is not None and a.id == b.id:
        return out
    names = {e.name for e in (a or [])} | {e.name for e in (b or [])}
    for name in names:
        ea = a[name] if a is not None and name in a else None
        eb = b[name] if b is not None and name in b else None
        if ea is not None and eb is not None and ea.id == eb.id and ea.filemode == eb.filemode:
            continue
        path = prefix + name
        ta = r[ea.id] if ea is not None and ea.filemode == MODE_TREE else None
        tb = r[eb.id] if eb is not None and eb.filemode == MODE_TREE else None
        if ta is not None or tb is not None:
            out.update(_changed_paths(r, ta, tb, path + "/"))
        blob_a = (ea.id, ea.filemode) if ea is not None and ta is None else None
        blob_b = (eb.id, eb.filemode) if eb is not None and tb is None else None
        if not _same(blob_a, blob_b):
            out[path] = (blob_a, blob_b)
    return out


def _conflict_file(r: pygit2.Repository, base, mine, other, max_lines: int) -> ConflictFile:
    path = (mine or other or base).path
    if mine is None or other is None:
        return ConflictFile(path, "modify/delete", hunk_count=1)
    result = r.merge_file_from_index(base, mine, other)
    hunks = _hunks(result.contents, max_lines)
    return ConflictFile(path, "content" if base is not None else "add/add", hunks, len(hunks))


def _hunks(text: str, max_lines: int) -> list[ConflictHunk]:
    """The <<<<<<< / ======= / >>>>>>> regions of a merged file."""
    hunks: list[ConflictHunk] = []
    side = None
    ours: list[str] = []
    theirs: list[str] = []
    for line in text.splitlines():
        if side is None and line.startswith("<<<<<<<"):
            side, ours, theirs = "ours", [], []
        elif side == "ours" and line.startswith("======="):
            side = "theirs"
        elif side == "theirs" and line.startswith(">>>>>>>"):
            cut = len(ours) > max_lines or len(theirs) > max_lines
            hunks.append(ConflictHunk(ours[:max_lines], theirs[:max_lines], cut))
            side = None
        elif side == "ours":
            ours.append(line)
        elif side == "theirs":
            theirs.append(line)
    return hunks


def merge_base(repo: Path | str, a: str, b: str) -> str | None:
    """The newest commit both a and b contain (the shared chain, when they share one)."""
    r = _open(repo)
    ca, cb = _peel_commit(r, a), _peel_commit(r, b)
    if ca is None or cb is None:
        raise MergeError(f"{a if ca is None else b} is not a commit of {repo}")
    found = r.merge_base(ca.id, cb.id)
    return str(found) if found else None


@dataclass
class StackedSeries:
    name: str
    commits: list[str]  # the commits it added to the stack (none when all were there already)
    sources: list[str] = field(default_factory=list)  # the chain commit each one replays, in step


@dataclass
class SkippedSeries:
    name: str
    files: list[str]  # where it conflicted with the stack


@dataclass
class Stack:
    base: str
    head: str
    included: list[StackedSeries] = field(default_factory=list)
    skipped: list[SkippedSeries] = field(default_factory=list)


MAX_STACK_COMMITS = 5000  # commits of one chain replayed, at most


def stack_chains(repo: Path | str, base: str, chains: list[tuple[str, str, str]], ref: str | None = None) -> Stack:
    """Replay each chain (name, its base, its head) commit by commit onto the stack that
    starts at base, in the order given; a chain with a conflict is left out whole. A
    commit already on the stack (a shared prerequisite) adds nothing. Commits keep their
    author and message (so provenance reads them as it reads a chain) and get the fixed
    committer, dated as their author: the same input makes the same shas. ref, when
    given, is pointed at the head."""
    r = _open(repo)
    start = _peel_commit(r, base)
    if start is None:
        raise MergeError(f"{base} is not a commit of {repo}")
    tip = start
    result = Stack(str(start.id), str(start.id))
    for name, chain_base, head in chains:
        commits = _commits_between(r, chain_base, head)
        added, sources, here, conflicts = [], [], tip, []
        for c in commits:
            tree, conflicts = _replay(r, here.tree, c)
            if conflicts:
                break
            if tree == here.tree.id:
                continue
            committer = pygit2.Signature(COMMITTER_NAME, COMMITTER_EMAIL, c.author.time, c.author.offset)
            here = r[r.create_commit(None, c.author, committer, c.message, tree, [here.id])]
            added.append(str(here.id))
            sources.append(str(c.id))
        if conflicts:
            result.skipped.append(SkippedSeries(name, conflicts))
            continue
        tip = here
        result.included.append(StackedSeries(name, added, sources))
    result.head = str(tip.id)
    if ref:
        r.references.create(ref, tip.id, force=True)
    return result


def _replay(r: pygit2.Repository, onto: pygit2.Tree, c: pygit2.Commit) -> tuple[pygit2.Oid, list[str]]:
    """c's change (from its first parent) made on the tree onto, path by path: (the new
    tree, []) or (onto's id, the paths that conflict)."""
    edits: dict[str, tuple | None] = {}
    conflicts = []
    for path, (before, after) in _changed_paths(r, c.parents[0].tree, c.tree).items():
        here = _blob_at(onto, path)
        if _same(here, after):
            continue
        if _same(here, before):
            edits[path] = after
            continue
        merged = _merge_blobs(r, path, before, here, after)
        if merged is None:
            conflicts.append(path)
        else:
            edits[path] = merged
    if conflicts:
        return onto.id, sorted(conflicts)
    if not edits:
        return onto.id, []
    return _write_tree(r, onto, edits) or r.TreeBuilder().write(), []


def _blob_at(tree: pygit2.Tree, path: str) -> Blob | None:
    try:
        e = tree[path]
    except KeyError:
        return None
    return (e.id, e.filemode) if e.filemode != MODE_TREE else None


def _commits_between(r: pygit2.Repository, base: str, head: str) -> list[pygit2.Commit]:
    """First-parent commits after base up to head, oldest first."""
    stop = _peel_commit(r, base)
    current = _peel_commit(r, head)
    if stop is None or current is None:
        raise MergeError(f"{base if stop is None else head} is not a commit of {r.path}")
    out = []
    while current.id != stop.id and current.parents and len(out) < MAX_STACK_COMMITS:
        out.append(current)
        current = current.parents[0]
    return list(reversed(out))


def changed_paths(repo: Path | str, a: str, b: str) -> list[str]:
    """Paths whose blob differs between commits a and b (a and b's trees walked only where
    their ids differ)."""
    r = _open(repo)
    ca, cb = _peel_commit(r, a), _peel_commit(r, b)
    if ca is None or cb is None:
        raise MergeError(f"{a if ca is None else b} is not a commit of {repo}")
    return sorted(_changed_paths(r, ca.tree, cb.tree))
