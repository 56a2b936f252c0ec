"""Mirrors: bare clones of kernel trees, added once and fetched.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from untangle.gitrepo_repo import (_NAME_RE, _open, _run)



# ---------------------------------------------------------------- mirrors

def mirror_add(data_dir: Path, name: str, source: str, branches: list[str] | None = None) -> Path:
    """Create (or refresh) the bare mirror data_dir/mirrors/<name>.git.

    source: a URL, a local repository path, or a git bundle file. branches:
    which branches to fetch (with all tags); None fetches every ref. An existing
    mirror gets its source and branch list updated and is fetched again. The
    mirror is built in a temporary directory and renamed into place, so a
    reader never sees half a mirror.
    """
    if not _NAME_RE.match(name):
        raise ValueError(f"invalid mirror name {name!r}")
    mirrors = Path(data_dir) / "mirrors"
    mirrors.mkdir(parents=True, exist_ok=True)
    dest = mirrors / f"{name}.git"
    if dest.exists():
        _configure_remote(dest, source, branches)
        mirror_fetch(dest)
        return dest
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=mirrors))
    try:
        _run(None, "init", "--bare", "-q", str(tmp))
        _configure_remote(tmp, source, branches)
        mirror_fetch(tmp)
        _set_head(tmp, branches)
        os.rename(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _configure_remote(repo: Path, source: str, branches: list[str] | None) -> None:
    src = str(Path(source).resolve()) if Path(source).exists() else source
    cfg = _open(repo).config
    cfg["remote.origin.url"] = src
    with contextlib.suppress(KeyError):
        cfg.delete_multivar("remote.origin.fetch", ".*")
    if branches:
        for b in branches:
            b = b.removeprefix("refs/heads/")
            cfg.set_multivar("remote.origin.fetch", "^$", f"+refs/heads/{b}:refs/heads/{b}")
        cfg.set_multivar("remote.origin.fetch", "^$", "+refs/tags/*:refs/tags/*")
    else:
        cfg.set_multivar("remote.origin.fetch", "^$", "+refs/*:refs/*")
    _keep_own_refs(repo)
    cfg["remote.origin.mirror"] = True


# Refs the mirror writes itself (applied chains, integration branches). A fetch of every
# ref with --prune deletes what the source does not have; negative refspecs keep them.
OWN_REFS = ("refs/reviewapp/*", "refs/heads/integration/*")


def _keep_own_refs(repo: Path) -> None:
    cfg = _open(repo).config
    have = set(cfg.get_multivar("remote.origin.fetch"))
    for pattern in OWN_REFS:
        if f"^{pattern}" not in have:
            cfg.set_multivar("remote.origin.fetch", "^$", f"^{pattern}")


def _set_head(repo: Path, branches: list[str] | None) -> None:
    """Point HEAD at the source's default branch (or the first one asked for)."""
    r = _open(repo)
    heads = [n for n in r.references if n.startswith("refs/heads/")]
    wanted = [f"refs/heads/{b.removeprefix('refs/heads/')}" for b in branches or []]
    for cand in wanted + ["refs/heads/master", "refs/heads/main"] + sorted(heads):
        if cand in r.references:
            r.set_head(cand)
            return


def mirror_fetch(path: Path) -> None:
    """Fetch the configured refs into the mirror (prunes deleted branches, never the
    mirror's own refs, also in a mirror configured before they were kept)."""
    _keep_own_refs(path)
    _run(path, "fetch", "--quiet", "--prune", "--tags", "origin")
