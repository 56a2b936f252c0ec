"""Whether two applied chains can live in one tree: a three-way merge of their results in
memory (pygit2's merge_trees: no index file, no worktree), with the conflicting hunks of
each file as both sides wrote them. Bounded: at most max_files files and max_lines lines a
side of a hunk are kept; the counts are kept whole."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from untangle.gitrepo_repo import COMMITTER_EMAIL, COMMITTER_NAME, _open, _peel_commit


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
    """Three-way merge of the trees of ours and theirs over ancestor's."""
    r = _open(repo)
    trees = []
    for rev in (ancestor, ours, theirs):
        commit = _peel_commit(r, rev)
        if commit is None:
            raise MergeError(f"{rev} is not a commit of {repo}")
        trees.append(commit.tree)
    index = r.merge_trees(*trees)
    if index.conflicts is None:
        return MergeCheck(True, tree=str(index.write_tree(r)))
    files, count = [], 0
    for base, mine, other in index.conflicts:
        count += 1
        if len(files) < max_files:
            files.append(_conflict_file(r, base, mine, other, max_lines))
    files.sort(key=lambda f: f.path)
    return MergeCheck(False, files, count)


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
        added, here, conflicts = [], tip, []
        for c in commits:
            index = r.merge_trees(c.parents[0].tree, here.tree, c.tree)
            if index.conflicts is not None:
                conflicts = sorted({(m or o or b).path for b, m, o in index.conflicts})
                break
            tree = index.write_tree(r)
            if tree == here.tree.id:
                continue
            committer = pygit2.Signature(COMMITTER_NAME, COMMITTER_EMAIL, c.author.time, c.author.offset)
            here = r[r.create_commit(None, c.author, committer, c.message, tree, [here.id])]
            added.append(str(here.id))
        if conflicts:
            result.skipped.append(SkippedSeries(name, conflicts))
            continue
        tip = here
        result.included.append(StackedSeries(name, added))
    result.head = str(tip.id)
    if ref:
        r.references.create(ref, tip.id, force=True)
    return result


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
