"""Base choice: the newest commit on candidate branches matching a series' pre-image blobs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pygit2
from untangle.gitrepo_repo import (MODE_TREE, _is_null, _open, _peel_commit, default_branch)


# ---------------------------------------------------------------- guess_base

@dataclass
class BaseAttempt:
    rev: str  # a commit sha, or the branch name when the branch is not there
    branch: str
    reason: str  # "match", or why the commit was rejected


@dataclass
class PartialMatch:
    rev: str
    matched: int
    total: int


@dataclass
class BaseGuess:
    sha: str | None
    branch: str | None
    attempts: list[BaseAttempt] = field(default_factory=list)
    best_partial: PartialMatch | None = None  # when nothing matched: the closest commit


def guess_base(repo: Path, blobs: list[tuple[str, str]], branches: list[str], depth: int = 1000) -> BaseGuess:
    """Most recent commit on the candidate branches whose blobs match the pre-images.

    blobs: (path, abbreviated pre-image blob id) from the series' "index a..b"
    lines; an all-zero id means the file must not exist. Each branch is walked
    newest first for up to `depth` commits; the first full match on a branch is
    that branch's candidate, and the newest candidate (committer time) wins.
    Every commit examined is recorded in attempts with why it was rejected.
    Returns a BaseGuess with every attempt and, when nothing matched, the best partial match.
    """
    r = _open(repo)
    want = [(p, b.lower()) for p, b in dict(blobs).items()] if blobs else []
    attempts: list[BaseAttempt] = []
    found: list[tuple[int, str, str]] = []
    best: tuple[int, str] | None = None
    seen: dict[str, str | None] = {}  # commit -> rejection reason, shared by branches
    matcher = _BlobMatcher(r, want)
    for branch in branches or ([default_branch(repo)] if default_branch(repo) else []):
        tip = _peel_commit(r, branch)
        if tip is None:
            attempts.append(BaseAttempt(branch, branch, "branch not found"))
            continue
        walker = r.walk(tip.id, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.TIME)
        for n, commit in enumerate(walker):
            if n >= depth:
                attempts.append(BaseAttempt(str(commit.id), branch, f"depth limit {depth} reached"))
                break
            sha = str(commit.id)
            if sha not in seen:
                matched, reason = matcher.match(commit.tree)
                seen[sha] = reason
                if best is None or matched > best[0]:
                    best = (matched, sha)
            attempts.append(BaseAttempt(sha, branch, seen[sha] or "match"))
            if seen[sha] is None:
                found.append((commit.commit_time, sha, branch))
                break
    if not found:
        partial = PartialMatch(best[1], best[0], len(want)) if best else None
        return BaseGuess(None, None, attempts, partial)
    _, sha, branch = max(found, key=lambda t: t[0])
    return BaseGuess(sha, branch, attempts)


class _BlobMatcher:
    """How many wanted (path, blob prefix) pairs a tree matches, and the first mismatch.

    Memoised per subtree: neighbouring commits share almost all of their subtrees, so a walk of 1,000 commits against a series touching 5,000 files
    looks again only into the directories a commit changed (was every path, every commit).

    The wanted paths are grouped by directory; a directory's result (matched count,
    first mismatch in the original order) is keyed by its tree id.
    """

    def __init__(self, r: pygit2.Repository, want: list[tuple[str, str]]):
        self.r = r
        self.order = {p: i for i, (p, _) in enumerate(want)}
        self.root = self._group(want)
        self.memo: dict[tuple[int, str], tuple[int, tuple[int, str] | None]] = {}

    @staticmethod
    def _group(want: list[tuple[str, str]]) -> dict:
        root: dict = {"files": [], "dirs": {}}
        for path, prefix in want:
            node, parts = root, path.split("/")
            for part in parts[:-1]:
                node = node["dirs"].setdefault(part, {"files": [], "dirs": {}})
            node["files"].append((parts[-1], path, prefix))
        return root

    def match(self, tree: pygit2.Tree) -> tuple[int, str | None]:
        matched, first = self._node(tree, self.root)
        return matched, first[1] if first else None

    def _node(self, tree: pygit2.Tree | None, node: dict) -> tuple[int, tuple[int, str] | None]:
        key = (id(node), str(tree.id) if tree is not None else "")
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        matched, first = 0, None
        for name, path, prefix in node["files"]:
            entry = _entry_in(tree, name)
            blob = entry if entry is not None and entry.type == pygit2.enums.ObjectType.BLOB else None
            ok, why = _blob_verdict(path, prefix, blob)
            matched += ok
            if not ok and (first is None or self.order[path] < first[0]):
                first = (self.order[path], why)
        for name, child in node["dirs"].items():
            entry = _entry_in(tree, name)
            sub = self.r[entry.id] if entry is not None and entry.filemode == MODE_TREE else None
            m, f = self._node(sub, child)
            matched += m
            if f is not None and (first is None or f[0] < first[0]):
                first = f
        self.memo[key] = (matched, first)
        return matched, first


def _entry_in(tree: pygit2.Tree | None, name: str):
    if tree is None:
        return None
    try:
        return tree[name]
    except KeyError:
        return None


def _blob_verdict(path: str, prefix: str, blob) -> tuple[bool, str]:
    if _is_null(prefix):
        return blob is None, f"{path}: exists but the series creates it"
    if blob is None:
        return False, f"{path}: missing"
    return str(blob.id).startswith(prefix), f"{path}: blob {str(blob.id)[:len(prefix)]} != {prefix}"
