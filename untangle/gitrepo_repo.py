"""Repository basics of the git layer: opening, running git, naming commits.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import re
from pathlib import Path

import git as gitpython
import pygit2


COMMITTER_NAME = "reviewapp"
COMMITTER_EMAIL = "reviewapp@localhost"
CHAIN_REF_PREFIX = "refs/reviewapp/chains/"
LINK_PREFIX = "https://patch.msgid.link/"
MODE_TREE = pygit2.enums.FileMode.TREE
MODE_BLOB = pygit2.enums.FileMode.BLOB
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _open(repo: Path | str) -> pygit2.Repository:
    return pygit2.Repository(str(repo))


def _git(repo: Path | str | None = None) -> gitpython.Git:
    return gitpython.Git(str(repo) if repo is not None else None)


def _run(repo: Path | str | None, *args: str, **kw) -> str:
    """Run git with cwd=repo; keep trailing newlines (diff output needs them)."""
    return _git(repo).execute(["git", *args], strip_newline_in_stdout=False, **kw)



# ---------------------------------------------------------------- revisions

def _peel_commit(r: pygit2.Repository, rev: str) -> pygit2.Commit | None:
    try:
        obj = r.revparse_single(rev)
        return obj.peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        return None


def resolve(repo: Path, rev: str) -> str | None:
    """Full commit sha for rev (ref name, sha or unique sha prefix), or None."""
    if not rev or rev.startswith("-"):
        return None
    c = _peel_commit(_open(repo), rev)
    return str(c.id) if c else None


def default_branch(repo: Path) -> str | None:
    """Short name of the branch HEAD points to (falls back to master/main)."""
    r = _open(repo)
    with contextlib.suppress(KeyError, pygit2.GitError):
        target = r.references["HEAD"].target
        if isinstance(target, str) and target in r.references:
            return target.removeprefix("refs/heads/")
    for name in ("master", "main"):
        if f"refs/heads/{name}" in r.references:
            return name
    heads = sorted(n for n in r.references if n.startswith("refs/heads/"))
    return heads[0].removeprefix("refs/heads/") if heads else None


def commit_info(repo: Path, sha: str) -> dict:
    r = _open(repo)
    c = _peel_commit(r, sha)
    if c is None:
        raise KeyError(f"no commit {sha}")
    subject, _, body = c.message.partition("\n")
    return {
        "sha": str(c.id), "tree": str(c.tree_id), "parents": [str(p) for p in c.parent_ids],
        "author_name": c.author.name, "author_email": c.author.email,
        "author_date": _sig_iso(c.author),
        "committer_name": c.committer.name, "committer_email": c.committer.email,
        "committer_date": _sig_iso(c.committer),
        "subject": subject, "message": c.message, "body": body.lstrip("\n"),
    }


def _sig_iso(sig: pygit2.Signature) -> str:
    tz = dt.timezone(dt.timedelta(minutes=sig.offset))
    return dt.datetime.fromtimestamp(sig.time, tz).isoformat()


def _blob_at(tree: pygit2.Tree, path: str) -> pygit2.Object | None:
    try:
        entry = tree[path]
    except KeyError:
        return None
    return entry if entry.type == pygit2.enums.ObjectType.BLOB else None


def _is_null(prefix: str) -> bool:
    return bool(prefix) and set(prefix) == {"0"}
