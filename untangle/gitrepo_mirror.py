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

def mirror_add(data_dir: Path, name: str, source: str, branches: list[str] | None = None,
               references: list[str] | None = None) -> Path:
    """Create (or refresh) the bare mirror data_dir/mirrors/<name>.git.

    source: a URL, a local repository path, or a git bundle file. branches:
    which branches to fetch (with all tags); None fetches every ref. An existing
    mirror gets its source and branch list updated and is fetched again. The
    mirror is built in a temporary directory and renamed into place, so a
    reader never sees half a mirror. references: local repositories whose objects a new
    mirror borrows (git alternates), so only what they lack is fetched.
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
        _borrow_objects(tmp, references or [])
        _configure_remote(tmp, source, branches)
        mirror_fetch(tmp)
        _set_head(tmp, branches)
        os.rename(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _borrow_objects(repo: Path, references: list[str]) -> None:
    """Alternates for each reference that is a repository here (bare or not); others are
    ignored, so a host without the copy just fetches everything."""
    stores = []
    for ref in references:
        for objects in (Path(ref) / "objects", Path(ref) / ".git" / "objects"):
            if (objects / "pack").is_dir():
                stores.append(str(objects.resolve()))
                break
    if stores:
        (repo / "objects" / "info" / "alternates").write_text("".join(f"{s}\n" for s in stores))


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


# ---------------------------------------------------------------- bundles: commits that cross hosts

class BundleError(Exception):
    """A bundle that could not be written or read; .missing_base when the repository lacks
    the commit it was made on (fetch the mirror, then try again)."""

    def __init__(self, message: str, missing_base: bool = False):
        super().__init__(message)
        self.missing_base = missing_base


def export_bundle(repo: Path, ref: str, base: str, max_bytes: int) -> bytes:
    """The commits of ref after base (and what they need that base lacks) as a git bundle,
    at most max_bytes."""
    with tempfile.TemporaryDirectory(prefix="bundle-", dir=repo) as t:
        path = Path(t) / "run.bundle"
        try:
            _run(repo, "bundle", "create", "--quiet", str(path), ref, f"^{base}")
        except Exception as exc:  # noqa: BLE001 - git's message says what is wrong
            raise BundleError(f"bundle of {ref} over {base[:12]}: {_stderr(exc)}") from exc
        size = path.stat().st_size
        if size > max_bytes:
            raise BundleError(f"bundle of {ref} is {size} bytes, over the limit of {max_bytes}")
        return path.read_bytes()


def import_bundle(repo: Path, data: bytes, ref: str) -> str:
    """Store a bundle's objects in repo and point ref at its head; returns the head."""
    with tempfile.TemporaryDirectory(prefix="bundle-", dir=repo) as t:
        path = Path(t) / "run.bundle"
        path.write_bytes(data)
        try:
            out = _run(repo, "bundle", "unbundle", str(path))
        except Exception as exc:  # noqa: BLE001
            text = _stderr(exc)
            raise BundleError(f"bundle for {ref}: {text}", missing_base="prerequisite" in text) from exc
    head = out.split()[0] if out.strip() else ""
    if not head:
        raise BundleError(f"bundle for {ref} names no commit")
    _run(repo, "update-ref", ref, head)
    return head


def _stderr(exc: Exception) -> str:
    text = getattr(exc, "stderr", None)
    return (text if isinstance(text, str) and text.strip() else str(exc)).strip()[:1000]
