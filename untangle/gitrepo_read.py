"""Reading: trees, files, diffs, range-diffs, history, worktrees and exports.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import git as gitpython
import pygit2
from untangle.gitrepo_repo import (MODE_TREE, _blob_at, _open, _peel_commit, _run, resolve)


def patch_ids_since(repo: Path | str, rev: str, since: dt.datetime | None = None,
                    limit: int = 20000) -> set[str]:
    """Stable patch-ids of the non-merge commits reachable from rev, committed after since:
    what a branch already carries, to tell that a posted series was merged."""
    from .patchid import patch_id
    args = ["log", "--no-merges", "--no-color", "-p", "--format=commit %H", f"-n{limit}", rev]
    if since is not None:
        args.insert(1, f"--since={since.isoformat()}")
    found = set()
    for chunk in re.split(r"^commit [0-9a-f]{40}\n", _run(repo, *args), flags=re.M):
        pid = patch_id(chunk) if "diff --git" in chunk else None
        if pid:
            found.add(pid)
    return found



# ---------------------------------------------------------------- trees and diffs

def _tree_at(r: pygit2.Repository, rev: str, path: str = "") -> pygit2.Tree:
    c = _peel_commit(r, rev)
    if c is None:
        raise KeyError(f"unknown revision {rev!r}")
    path = path.strip("/")
    if not path:
        return c.tree
    obj = r[c.tree[path].id]
    if not isinstance(obj, pygit2.Tree):
        raise NotADirectoryError(path)
    return obj


def list_tree(repo: Path, rev: str, path: str = "") -> list[dict]:
    """Entries of the directory path at rev: name, path, type (tree|blob|commit),
    size (blobs only, else None), mode ("100644", "100755", "120000", "040000")."""
    r = _open(repo)
    try:
        tree = _tree_at(r, rev, path)
    except KeyError:
        raise FileNotFoundError(f"{path or '/'} not found at {rev}") from None
    prefix = path.strip("/") + "/" if path.strip("/") else ""
    out = []
    for e in tree:
        is_tree = e.filemode == MODE_TREE
        size = None if is_tree or e.filemode == pygit2.enums.FileMode.COMMIT else r.odb.read_header(e.id)[1]
        out.append({"name": e.name, "path": prefix + e.name,
                    "type": "tree" if is_tree else "commit" if e.filemode == pygit2.enums.FileMode.COMMIT else "blob",
                    "size": size, "mode": f"{int(e.filemode):06o}"})
    return out


def read_file(repo: Path, rev: str, path: str) -> bytes:
    r = _open(repo)
    c = _peel_commit(r, rev)
    blob = _blob_at(c.tree, path.strip("/")) if c else None
    if blob is None:
        raise FileNotFoundError(f"{path} not found at {rev}")
    return blob.data


def diff(repo: Path, a: str, b: str, paths: list[str] | None = None) -> str:
    """Unified diff a..b (git diff, renames detected), optionally limited to paths."""
    args = ["diff", "--no-color", "--no-ext-diff", "-M", _rev_arg(repo, a), _rev_arg(repo, b)]
    return _run(repo, *args, "--", *(paths or []))


def _rev_arg(repo: Path, rev: str) -> str:
    sha = resolve(repo, rev)
    if sha is None:
        raise KeyError(f"unknown revision {rev!r}")
    return sha


def changed_files(repo: Path, a: str, b: str) -> list[str]:
    """Paths that differ between a and b (both names of a rename), sorted."""
    r = _open(repo)
    ca, cb = _peel_commit(r, a), _peel_commit(r, b)
    if ca is None or cb is None:
        raise KeyError(f"unknown revision {a if ca is None else b!r}")
    d = r.diff(ca.tree, cb.tree)
    paths = set()
    for delta in d.deltas:
        paths.add(delta.old_file.path)
        paths.add(delta.new_file.path)
    return sorted(paths)


def range_diff(repo: Path, base1: str, head1: str, base2: str, head2: str) -> str:
    revs = [_rev_arg(repo, x) for x in (base1, head1, base2, head2)]
    return _run(repo, "range-diff", "--no-color", f"{revs[0]}..{revs[1]}", f"{revs[2]}..{revs[3]}")


# ---------------------------------------------------------------- worktrees

@contextlib.contextmanager
def worktree(repo: Path, rev: str, paths: list[str] | None = None) -> Iterator[Path]:
    """A temporary detached worktree of rev; sparse (only paths) when paths is given.

    Always removed (worktree remove --force, prune) when the block exits, also
    on exceptions. The directory name is unique, so concurrent calls are safe.
    """
    sha = _rev_arg(repo, rev)
    tmp = Path(tempfile.mkdtemp(prefix="untangle-wt-"))
    wt = tmp / "tree"
    try:
        if paths:
            _run(repo, "worktree", "add", "--quiet", "--detach", "--no-checkout", str(wt), sha)
            _retry(lambda: _run(wt, "sparse-checkout", "set", "--no-cone", *[_sparse_pattern(p) for p in paths]))
            _run(wt, "checkout", "--quiet", "--detach", sha)
        else:
            _run(repo, "worktree", "add", "--quiet", "--detach", str(wt), sha)
        yield wt
    finally:
        with contextlib.suppress(gitpython.GitCommandError):
            _run(repo, "worktree", "remove", "--force", str(wt))
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(gitpython.GitCommandError):
            _run(repo, "worktree", "prune")


def _retry(fn: Callable[[], object], tries: int = 5) -> None:
    """The first sparse worktree of a repo writes its shared config (lock file);
    a concurrent first one fails to take the lock and simply tries again."""
    for attempt in range(tries):
        try:
            fn()
            return
        except gitpython.GitCommandError:
            if attempt == tries - 1:
                raise
            time.sleep(0.1 * (attempt + 1))


def _sparse_pattern(path: str) -> str:
    p = path.strip("/")
    if not p or ".." in p.split("/"):
        raise ValueError(f"bad sparse path {path!r}")
    return "/" + p


def export_tree(repo: Path, rev: str, dest: Path, paths: list[str] | None = None) -> int:
    """Write the files of rev (or only those under paths) into dest; return the file count.

    Reads objects directly: no worktree, no index. Keeps executable bits and
    symlinks; submodules are skipped.
    """
    r = _open(repo)
    c = _peel_commit(r, rev)
    if c is None:
        raise KeyError(f"unknown revision {rev!r}")
    dest = Path(dest)
    count = 0
    for p in paths or [""]:
        p = p.strip("/")
        if p and ".." in p.split("/"):
            raise ValueError(f"bad path {p!r}")
        if not p:
            count += _export(r, c.tree, dest)
            continue
        try:
            e = c.tree[p]
        except KeyError:
            raise FileNotFoundError(f"{p} not found at {rev}") from None
        if e.filemode == MODE_TREE:
            count += _export(r, r[e.id], dest / p)
        else:
            count += _export_entry(r, e, dest / p)
    return count


def _export(r, tree: pygit2.Tree, dest: Path) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    n = 0
    for e in tree:
        if e.filemode == MODE_TREE:
            n += _export(r, r[e.id], dest / e.name)
        else:
            n += _export_entry(r, e, dest / e.name)
    return n


def _export_entry(r, e, target: Path) -> int:
    if e.filemode == pygit2.enums.FileMode.COMMIT:
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    data = r[e.id].data
    if target.is_symlink() or target.exists():
        target.unlink()
    if e.filemode == pygit2.enums.FileMode.LINK:
        os.symlink(data, target)
        return 1
    target.write_bytes(data)
    if e.filemode == pygit2.enums.FileMode.BLOB_EXECUTABLE:
        target.chmod(0o755)
    return 1


def directories(repo: Path, rev: str, limit: int = 200_000) -> list[str]:
    """Every directory of the tree at rev (MAINTAINERS patterns that name one cover it whole)."""
    r = _open(repo)
    c = _peel_commit(r, rev)
    if c is None:
        raise KeyError(f"unknown revision {rev!r}")
    out: list[str] = []
    stack = [("", c.tree)]
    while stack and len(out) < limit:
        prefix, tree = stack.pop()
        for e in tree:
            if e.filemode == MODE_TREE:
                path = prefix + e.name
                out.append(path)
                stack.append((path + "/", r[e.id]))
    return out


def blob_id(repo: Path, rev: str, path: str) -> str | None:
    """The blob id of path at rev (None when absent): a cache key for what is read from it."""
    r = _open(repo)
    c = _peel_commit(r, rev)
    blob = _blob_at(c.tree, path.strip("/")) if c else None
    return str(blob.id) if blob is not None else None
