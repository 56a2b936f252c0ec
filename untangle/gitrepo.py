"""The git layer: mirrors, revisions, applying patch chains, blame, trees.

This is the only module that talks to git. Hot paths (apply_chain, blame,
guess_base, tree reads) run in-process with pygit2 and never touch an index or a
checkout; porcelain-shaped operations (clone/fetch, range-diff, worktrees) run
the git binary through GitPython with an explicit working directory.

Everything returns plain data (str, bytes, dicts, lists).

Ref policy of apply_chain: on success the ref (refs/reviewapp/chains/<id>) points
at the last commit and any stale "<ref>-partial" is deleted; on conflict or
failure the ref is left untouched and "<ref>-partial" points at the last commit
that did apply (when one did), so a reviewer can look at the partial result.
Commits are deterministic (committer date = author date, fixed committer), so
applying the same patches to the same base twice, in any process, yields the
same shas.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import os
import re
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterator

import git as gitpython
import pygit2

from untangle.gitrepo_patch import (MAX_BINARY_BYTES, FilePatch, Hunk, PatchError, apply_delta,
                                    apply_hunks,
                                    parse_diff)

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
    cfg["remote.origin.mirror"] = True


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
    """Fetch the configured refs into the mirror (prunes deleted branches)."""
    _run(path, "fetch", "--quiet", "--prune", "--tags", "origin")


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


# ---------------------------------------------------------------- guess_base

def _blob_at(tree: pygit2.Tree, path: str) -> pygit2.Object | None:
    try:
        entry = tree[path]
    except KeyError:
        return None
    return entry if entry.type == pygit2.enums.ObjectType.BLOB else None


def _is_null(prefix: str) -> bool:
    return bool(prefix) and set(prefix) == {"0"}


def guess_base(repo: Path, blobs: list[tuple[str, str]], branches: list[str], depth: int = 1000) -> dict:
    """Most recent commit on the candidate branches whose blobs match the pre-images.

    blobs: (path, abbreviated pre-image blob id) from the series' "index a..b"
    lines; an all-zero id means the file must not exist. Each branch is walked
    newest first for up to `depth` commits; the first full match on a branch is
    that branch's candidate, and the newest candidate (committer time) wins.
    Every commit examined is recorded in attempts with why it was rejected.
    Returns {"sha", "branch", "attempts": [{"rev","branch","reason"}],
    "best_partial": {"rev","matched","total"} | None}.
    """
    r = _open(repo)
    want = [(p, b.lower()) for p, b in dict(blobs).items()] if blobs else []
    attempts: list[dict] = []
    found: list[tuple[int, str, str]] = []
    best: tuple[int, str] | None = None
    seen: dict[str, str | None] = {}  # commit -> rejection reason, shared by branches
    matcher = _BlobMatcher(r, want)
    for branch in branches or ([default_branch(repo)] if default_branch(repo) else []):
        tip = _peel_commit(r, branch)
        if tip is None:
            attempts.append({"rev": branch, "branch": branch, "reason": "branch not found"})
            continue
        walker = r.walk(tip.id, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.TIME)
        for n, commit in enumerate(walker):
            if n >= depth:
                attempts.append({"rev": str(commit.id), "branch": branch,
                                 "reason": f"depth limit {depth} reached"})
                break
            sha = str(commit.id)
            if sha not in seen:
                matched, reason = matcher.match(commit.tree)
                seen[sha] = reason
                if best is None or matched > best[0]:
                    best = (matched, sha)
            attempts.append({"rev": sha, "branch": branch, "reason": seen[sha] or "match"})
            if seen[sha] is None:
                found.append((commit.commit_time, sha, branch))
                break
    if not found:
        partial = {"rev": best[1], "matched": best[0], "total": len(want)} if best else None
        return {"sha": None, "branch": None, "attempts": attempts, "best_partial": partial}
    _, sha, branch = max(found, key=lambda t: t[0])
    return {"sha": sha, "branch": branch, "attempts": attempts, "best_partial": None}


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


# ---------------------------------------------------------------- apply_chain

class _Conflict(Exception):
    def __init__(self, errors: list[str], files: list[str], hunks: list[dict]):
        super().__init__("; ".join(errors))
        self.errors, self.files, self.hunks = errors, files, hunks


def _parse_date(value: str) -> tuple[int, int]:
    """(unix time, utc offset minutes) from an RFC 2822 or ISO 8601 date."""
    value = value.strip()
    try:
        d = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        d = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    return int(d.timestamp()), int(d.utcoffset().total_seconds() // 60)


_PREFIX_RE = re.compile(r"^(\s*\[[^\]]*\])+\s*")
_TRAILER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*: \S")


def commit_message(patch: dict) -> str:
    """Subject, body and a Link: trailer to the mail (unless one is there).

    The Link joins the existing trailer block (Signed-off-by: ...) when the body
    ends with one, as b4 does, so `git interpret-trailers` sees one block;
    otherwise it is separated by a blank line.
    """
    subject = _PREFIX_RE.sub("", (patch.get("subject") or "").strip()) or "(no subject)"
    body = "\n".join(line.rstrip() for line in (patch.get("message") or "").strip("\n").split("\n")).strip("\n")
    msgid = (patch.get("msgid") or "").strip().strip("<>")
    if msgid and not re.search(r"^Link:.*" + re.escape(msgid), body, re.M):
        link = f"Link: {LINK_PREFIX}{msgid}"
        last = body.rsplit("\n\n", 1)[-1]
        if body and all(_TRAILER_RE.match(x) or x.startswith((" ", "\t")) for x in last.split("\n")):
            body = f"{body}\n{link}"
        else:
            body = f"{body}\n\n{link}" if body else link
    return f"{subject}\n\n{body}\n" if body else f"{subject}\n"


def _signature(name: str, mail: str, date: str | None, default_time: int = 0) -> pygit2.Signature:
    t, off = _parse_date(date) if date else (default_time, 0)
    return pygit2.Signature(name or mail or "unknown", mail or "", t, off, "utf-8")


class _TreeView:
    """The pre-image tree plus the edits of the patch being applied."""

    def __init__(self, r: pygit2.Repository, tree: pygit2.Tree):
        self.r, self.tree = r, tree
        self.changes: dict[str, tuple[pygit2.Oid, int] | None] = {}

    def get(self, path: str) -> tuple[pygit2.Oid, int] | None:
        if path in self.changes:
            return self.changes[path]
        try:
            e = self.tree[path]
        except KeyError:
            return None
        return (e.id, e.filemode) if e.type == pygit2.enums.ObjectType.BLOB else None

    def data(self, oid: pygit2.Oid) -> bytes:
        return self.r[oid].data

    def write(self) -> pygit2.Oid:
        oid = _write_tree(self.r, self.tree, self.changes)
        return oid if oid is not None else self.r.TreeBuilder().write()


def _write_tree(r: pygit2.Repository, tree: pygit2.Tree | None, changes: dict) -> pygit2.Oid | None:
    """Write tree with changes (path -> (oid, mode) | None); only edited paths are rebuilt."""
    tb = r.TreeBuilder(tree) if tree is not None else r.TreeBuilder()
    sub: dict[str, dict] = defaultdict(dict)
    direct = {}
    for path, val in changes.items():
        head, _, rest = path.partition("/")
        if rest:
            sub[head][rest] = val
        else:
            direct[head] = val
    # Deletions first, then directories, then files: a path can turn from a
    # file into a directory or back within one patch.
    for name, val in direct.items():
        if val is None and tb.get(name) is not None:
            tb.remove(name)
    for name, subchanges in sub.items():
        entry = tb.get(name)
        subtree = r[entry.id] if entry is not None and entry.filemode == MODE_TREE else None
        oid = _write_tree(r, subtree, subchanges)
        if oid is not None:
            tb.insert(name, oid, MODE_TREE)
        elif subtree is not None:
            tb.remove(name)
    for name, val in direct.items():
        if val is not None:
            tb.insert(name, val[0], val[1])
    return tb.write() if len(tb) else None


def _mode(text: str | None, default: int) -> int:
    return int(text, 8) if text else default


def _lookup_prefix(r: pygit2.Repository, prefix: str | None) -> pygit2.Blob | None:
    """A blob from an abbreviated id (index line), if the object db has it."""
    if not prefix or _is_null(prefix) or len(prefix) < 4:
        return None
    try:
        obj = r[prefix]
    except (KeyError, ValueError, pygit2.GitError):
        return None
    return obj if obj.type == pygit2.enums.ObjectType.BLOB else None


def _three_way(r: pygit2.Repository, fp: FilePatch, ours_oid: pygit2.Oid, mode: int) -> bytes | None:
    """Like `git am -3`: apply to the recorded pre-image, then merge; None = conflict."""
    pre = _lookup_prefix(r, fp.old_blob)
    if pre is None:
        return None
    theirs, failed = apply_hunks(pre.data, fp.hunks)
    if failed:
        return None
    theirs_oid = r.create_blob(theirs)
    path = fp.new_path or fp.old_path
    entries = [pygit2.IndexEntry(path, oid, mode) for oid in (pre.id, ours_oid, theirs_oid)]
    try:
        res = r.merge_file_from_index(*entries)
        return res.contents.encode("utf-8") if res.automergeable else None
    except UnicodeDecodeError:  # pygit2 decodes as UTF-8; git merge-file takes any bytes
        return _merge_file_cli(pre.data, r[ours_oid].data, theirs)


def _merge_file_cli(base: bytes, ours: bytes, theirs: bytes) -> bytes | None:
    tmp = Path(tempfile.mkdtemp(prefix="untangle-merge-"))
    try:
        for name, data in (("base", base), ("ours", ours), ("theirs", theirs)):
            (tmp / name).write_bytes(data)
        g = _git(tmp)
        status, out, _ = g.execute(["git", "merge-file", "-p", "ours", "base", "theirs"],
                                   with_extended_output=True, with_exceptions=False,
                                   stdout_as_string=False, strip_newline_in_stdout=False)
        return out if status == 0 else None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _apply_file(view: _TreeView, fp: FilePatch, errors: list, files: list, hunks: list) -> bool:
    """Apply one file's patch into view.changes; on failure append to the report lists."""
    r = view.r
    path = fp.path
    def fail(msg: str, bad: list[Hunk] = ()) -> bool:
        errors.append(f"{path}: {msg}")
        files.append(path)
        hunks.extend(h.to_dict(path) for h in bad)
        return False

    if fp.is_new:
        if view.get(fp.new_path) is not None:
            return fail("already exists in tree")
        old_oid, old_mode, old = None, MODE_BLOB, b""
    else:
        cur = view.get(fp.old_path)
        if cur is None:
            return fail("does not exist in tree" if fp.old_path == path else f"{fp.old_path}: does not exist in tree")
        old_oid, old_mode = cur
        old = view.data(old_oid)
    if fp.binary is not None:
        if fp.binary.kind == "literal":
            new = fp.binary.data
        else:
            try:
                new = apply_delta(old, fp.binary.data)
            except (ValueError, IndexError) as e:
                return fail(f"binary patch does not apply: {e}")
    elif fp.binary_without_data:
        if fp.is_delete:
            new = b""
        elif old_oid is not None and fp.new_blob and str(old_oid).startswith(fp.new_blob):
            new = old
        else:
            post = _lookup_prefix(r, fp.new_blob)
            if post is None:
                return fail("cannot apply binary patch without full index line")
            new = post.data
    elif fp.hunks:
        new, bad = apply_hunks(old, fp.hunks)
        if bad:
            merged = _three_way(r, fp, old_oid, old_mode) if old_oid is not None else None
            if merged is None:
                first = bad[0]
                n = fp.hunks.index(first) + 1
                return fail(f"hunk #{n} {first.header} does not apply"
                            + ("" if len(bad) == 1 else f" (and {len(bad) - 1} more hunks)"), bad)
            new = merged
    else:
        new = old
    if fp.is_delete:
        if new:
            return fail("removal patch leaves file contents")
        view.changes[fp.old_path] = None
        return True
    if fp.is_rename:
        view.changes[fp.old_path] = None
    oid = old_oid if (old_oid is not None and new is old) else r.create_blob(new)
    view.changes[fp.new_path] = (oid, _mode(fp.new_mode, old_mode))
    return True


def _apply_patch(r: pygit2.Repository, tree: pygit2.Tree, diff: str | bytes,
                 max_binary: int = MAX_BINARY_BYTES) -> pygit2.Oid:
    """New tree oid; raises PatchError (bad input) or _Conflict (does not apply)."""
    files = parse_diff(diff, max_binary=max_binary)
    if not files:
        raise PatchError("patch is empty: no file changes found")
    view = _TreeView(r, tree)
    errors: list[str] = []
    bad_files: list[str] = []
    bad_hunks: list[dict] = []
    for fp in files:
        _apply_file(view, fp, errors, bad_files, bad_hunks)
    if errors:
        raise _Conflict(errors, bad_files, bad_hunks)
    return view.write()


def _chain_ref(ref: str) -> str:
    name = ref if ref.startswith("refs/") else CHAIN_REF_PREFIX + ref
    if not pygit2.reference_is_valid_name(name):
        raise ValueError(f"invalid ref name {name!r}")
    return name


def apply_chain(repo: Path, base: str, patches: list[dict], ref: str | None = None,
                progress: Callable[[int, int], None] | None = None,
                max_binary: int = MAX_BINARY_BYTES) -> dict:
    """Apply patches onto base, each as a real commit, in-process (no index, no checkout).

    Returns {"status": "applied"|"conflict"|"failed", "head", "tree", "applied":
    [{"msgid","commit","three_way"}], "failed": None | {...}}; see module doc for
    the ref policy. "failed" means bad input (corrupt patch, missing base),
    "conflict" means a well-formed patch that does not apply.
    """
    r = _open(repo)
    n = len(patches)
    result = {"status": "applied", "head": None, "tree": None, "applied": [], "failed": None}
    ref_name = _chain_ref(ref) if ref else None
    base_commit = _peel_commit(r, base) if base else None
    if base_commit is None:
        first = patches[0].get("msgid") if patches else None
        result["status"] = "failed"
        result["failed"] = _failure(first, f"base {base!r} not found in {repo}", [], [], [], None)
        return result
    head = base_commit
    for k, patch in enumerate(patches, 1):
        label = _patch_label(k, n, patch)
        try:
            tree_oid = _apply_patch(r, head.tree, patch.get("diff") or "", max_binary)
        except (PatchError, ValueError, UnicodeError, OverflowError, pygit2.GitError) as e:
            # Input git itself refuses (a path or mode it will not store):
            # bad input too, named like any corrupt patch.
            if not isinstance(e, PatchError):
                e = PatchError(f"git refused the patch: {e}")
            where = f"corrupt patch at line {e.line}: " if e.line else ""
            msg = f"{label}: {where}{e}" if where else f"{label}: {e}"
            result["status"] = "failed"
            result["failed"] = _failure(patch.get("msgid"), msg, [], [], [], e.line)
            break
        except _Conflict as c:
            result["status"] = "conflict"
            touched = _last_touched(r, base_commit, head, c.hunks, c.files, result["applied"])
            result["failed"] = _failure(patch.get("msgid"), f"{label}: " + "; ".join(c.errors),
                                        c.files, c.hunks, touched, None)
            break
        try:
            author = _author(patch, base_commit.commit_time)
        except ValueError as e:
            result["status"] = "failed"
            result["failed"] = _failure(patch.get("msgid"), f"{label}: {e}", [], [], [], None)
            break
        # Committer date = author date keeps the result deterministic.
        committer = pygit2.Signature(COMMITTER_NAME, COMMITTER_EMAIL, author.time, author.offset)
        oid = r.create_commit(None, author, committer, commit_message(patch), tree_oid, [head.id])
        head = r[oid]
        result["applied"].append({"msgid": patch.get("msgid"), "commit": str(oid)})
        if progress:
            progress(k, n)
    if result["applied"] or (not patches and result["status"] == "applied"):
        result["head"], result["tree"] = str(head.id), str(head.tree_id)
    _update_refs(r, ref_name, result)
    return result


def object_io_floor(repo: Path, base: str, steps: list[dict[str, tuple[str | None, bytes | None, int]]]) -> str:
    """The object I/O an in-process applier cannot avoid, for bench/apply_bench.py.

    steps: per commit, path -> (pre-image path or None, post-image bytes or None
    for a deletion, mode). Reads each pre-image, writes each post-image, rebuilds
    the trees and writes a commit; returns the last tree sha.
    """
    r = _open(repo)
    head = _peel_commit(r, base)
    sig = pygit2.Signature(COMMITTER_NAME, COMMITTER_EMAIL, 0, 0)
    for step in steps:
        changes = {}
        for path, (pre, data, mode) in step.items():
            if pre is not None:
                _ = r[head.tree[pre].id].data
            changes[path] = None if data is None else (r.create_blob(data), mode)
        tree_oid = _write_tree(r, head.tree, changes)
        head = r[r.create_commit(None, sig, sig, "floor\n", tree_oid, [head.id])]
    return str(head.tree_id)


def _author(patch: dict, default_time: int) -> pygit2.Signature:
    """The author signature; ValueError says whether the date or the name is bad."""
    name, mail = patch.get("author_name", "") or "", patch.get("author_email", "") or ""
    date = patch.get("date") or None
    try:
        t, off = _parse_date(date) if date else (default_time, 0)
    except (ValueError, OverflowError) as e:
        raise ValueError(f"bad date {date!r}: {e}") from None
    bad = [c for c in "<>\n\0" if c in name + mail]
    if bad:
        raise ValueError(f"bad author {name!r} <{mail}>: contains {bad[0]!r}")
    try:
        return pygit2.Signature(name or mail or "unknown", mail, t, off, "utf-8")
    except (ValueError, OverflowError) as e:
        raise ValueError(f"bad author or date {name!r} <{mail}> {date!r}: {e}") from None


def _patch_label(k: int, n: int, patch: dict) -> str:
    msgid = (patch.get("msgid") or "").strip("<>")
    return f'patch {k} of {n} <{msgid}> "{(patch.get("subject") or "").strip()}"'


def _failure(msgid, error, files, hunks, touched, line) -> dict:
    return {"msgid": msgid, "error": error, "files": files, "hunks": hunks,
            "last_touched": touched, "line": line}


def _update_refs(r: pygit2.Repository, ref_name: str | None, result: dict) -> None:
    """Atomic ref writes (libgit2 lock files); see the module doc for the policy."""
    if not ref_name:
        return
    partial = ref_name + "-partial"
    if result["status"] == "applied" and result["head"]:
        _set_ref(r, ref_name, result["head"])
        with contextlib.suppress(KeyError, pygit2.GitError):
            r.references.delete(partial)
    elif result["head"]:
        _set_ref(r, partial, result["head"])
    result["ref"] = ref_name if result["status"] == "applied" else (partial if result["head"] else None)


def _set_ref(r: pygit2.Repository, name: str, sha: str, tries: int = 10) -> None:
    """Write a ref; another process holding its lock (same ref) makes us retry."""
    for attempt in range(tries):
        try:
            r.references.create(name, sha, force=True)
            return
        except pygit2.GitError:
            if attempt == tries - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def _last_touched(r, base: pygit2.Commit, head: pygit2.Commit, hunks: list[dict], files: list[str],
                  applied: list[dict]) -> list[dict]:
    """Which chain patch (or the base) last touched the lines each failed hunk wanted."""
    by_sha = {a["commit"]: a["msgid"] for a in applied}
    out = []
    hunk_files = {h["file"] for h in hunks}
    for h in hunks:
        lines = _attribution(r, base, head, h["file"])
        if lines is None:  # gone at head: report who removed it
            hunk_files.discard(h["file"])
            continue
        lo = max(h["old_start"], 1)
        hi = min(lo + max(h["old_lines"], 1) - 1, len(lines))
        runs = list(_runs(lines, lo, hi))
        if not runs:  # the file is shorter now: fall back to who touched it at all
            hunk_files.discard(h["file"])
        for a, b, sha in runs:
            out.append({"file": h["file"], "lines": f"{a}-{b}", "commit": sha or str(base.id),
                        "by": by_sha.get(sha, "base") if sha else "base"})
    for f in dict.fromkeys(files):
        if f in hunk_files:
            continue
        sha = _last_commit_touching(r, base, head, f)
        out.append({"file": f, "lines": "", "commit": sha or str(base.id),
                    "by": by_sha.get(sha, "base") if sha else "base"})
    return out


def _runs(lines: list[str | None], lo: int, hi: int) -> Iterator[tuple[int, int, str | None]]:
    """Group 1-based lines lo..hi into runs with the same attribution."""
    start = lo
    for i in range(lo + 1, hi + 2):
        if i > hi or lines[i - 1] != lines[start - 1]:
            yield start, i - 1, lines[start - 1]
            start = i


def _last_commit_touching(r, base: pygit2.Commit, head: pygit2.Commit, path: str) -> str | None:
    chain = _linear_chain(r, base.id, head.id) or []
    for c in reversed(chain):
        if _entry_id(c.tree, path) != _entry_id(c.parents[0].tree, path):
            return str(c.id)
    return None


def _entry_id(tree: pygit2.Tree, path: str):
    try:
        return tree[path].id
    except KeyError:
        return None


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
