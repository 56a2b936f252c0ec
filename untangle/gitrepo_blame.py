"""Blame over an applied chain: which commit wrote each line of a file.
"""
from __future__ import annotations

import re
from pathlib import Path

import pygit2
from untangle.gitrepo_repo import (_blob_at, _open, _peel_commit, _run)


# ---------------------------------------------------------------- blame

def _linear_chain(r, base_id, head_id, limit: int = 5000) -> list[pygit2.Commit] | None:
    """Commits base..head (oldest first) if head reaches base by single-parent steps."""
    chain = []
    c = r[head_id]
    while c.id != base_id:
        if len(c.parent_ids) != 1 or len(chain) >= limit:
            return None
        chain.append(c)
        c = c.parents[0]
    chain.reverse()
    return chain


def _line_count(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def _renamed_from(r, parent: pygit2.Commit, commit: pygit2.Commit, path: str) -> str | None:
    diff = r.diff(parent.tree, commit.tree)
    diff.find_similar()
    for d in diff.deltas:
        if d.new_file.path == path and d.status in (pygit2.enums.DeltaStatus.RENAMED,
                                                    pygit2.enums.DeltaStatus.COPIED):
            return d.old_file.path
    return None


def _attribution(r, base: pygit2.Commit, head: pygit2.Commit, path: str) -> list[str | None] | None:
    """Per line of path at head: chain commit sha that introduced it, None = base."""
    if _blob_at(head.tree, path) is None:
        return None
    chain = _linear_chain(r, base.id, head.id)
    if chain is None:
        return _attribution_cli(r, base, head, path)
    # Walk back from head to find, per commit, the file's name in it and its parent.
    steps = []  # (commit, name in commit, name in parent or None)
    cur = path
    born = False
    for c in reversed(chain):
        parent = c.parents[0]
        if _blob_at(parent.tree, cur) is not None:
            steps.append((c, cur, cur))
            continue
        prev = _renamed_from(r, parent, c, cur)
        steps.append((c, cur, prev))
        if prev is None:
            born = True
            break
        cur = prev
    steps.reverse()
    start_blob = None if born else _blob_at(base.tree, cur)
    lines: list[str | None] = [None] * (_line_count(start_blob.data) if start_blob is not None else 0)
    for c, name, prev in steps:
        old = _blob_at(c.parents[0].tree, prev) if prev else None
        new = _blob_at(c.tree, name)
        if old is not None and old.id == new.id:
            continue
        lines = _carry(lines, old, new, str(c.id))
    return lines


def _carry(lines: list, old, new, sha: str) -> list:
    """Attribution after one commit: unchanged lines keep theirs, new lines get sha."""
    patch = pygit2.Patch.create_from(old, new, context_lines=0, interhunk_lines=0,
                                     flag=pygit2.enums.DiffOption.FORCE_TEXT | pygit2.enums.DiffOption.INDENT_HEURISTIC)
    out: list = []
    pos = 0  # 0-based index into lines (old side)
    for h in patch.hunks:
        old_begin = h.old_start - 1 if h.old_lines else h.old_start  # insertion: after old_start
        out.extend(lines[pos:old_begin])
        out.extend([sha] * h.new_lines)
        pos = old_begin + h.old_lines
    out.extend(lines[pos:])
    return out


def _attribution_cli(r, base, head, path) -> list[str | None]:
    """Non-linear ranges: let git blame walk the history."""
    out = _run(r.path, "blame", "--porcelain", f"{base.id}..{head.id}", "--", path)
    result: list[str | None] = []
    boundary: set[str] = set()
    sha = None
    for line in out.split("\n"):
        if re.match(r"^[0-9a-f]{40} \d+ \d+", line):
            sha = line[:40]
        elif line == "boundary" and sha:
            boundary.add(sha)
        elif line.startswith("\t"):
            result.append(sha)
    return [None if s in boundary else s for s in result]


def blame(repo: Path, base: str, head: str, path: str) -> list[str | None]:
    """For each line of path at head, the commit in base..head that introduced it.

    None means the line comes from base. Follows renames inside the chain; a
    file deleted and re-added counts from its re-adding commit.
    """
    r = _open(repo)
    b, h = _peel_commit(r, base), _peel_commit(r, head)
    if b is None or h is None:
        raise KeyError(f"unknown revision {base if b is None else head!r}")
    lines = _attribution(r, b, h, path)
    if lines is None:
        raise FileNotFoundError(f"{path} does not exist at {head}")
    return lines
