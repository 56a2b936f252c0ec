"""Base choice: the newest commit on candidate branches matching a series' pre-image blobs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pygit2
from untangle.gitrepo_repo import (_blob_at, _is_null, _open, _peel_commit, default_branch)


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
                matched, reason = _match_blobs(commit.tree, want)
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


def _match_blobs(tree: pygit2.Tree, want: list[tuple[str, str]]) -> tuple[int, str | None]:
    """(number of paths matching, first mismatch reason or None)."""
    matched, reason = 0, None
    for path, prefix in want:
        blob = _blob_at(tree, path)
        if _is_null(prefix):
            ok = blob is None
            why = f"{path}: exists but the series creates it"
        elif blob is None:
            ok, why = False, f"{path}: missing"
        else:
            ok = str(blob.id).startswith(prefix)
            why = f"{path}: blob {str(blob.id)[:len(prefix)]} != {prefix}"
        if ok:
            matched += 1
        elif reason is None:
            reason = why
    return matched, reason
