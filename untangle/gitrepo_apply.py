"""Applying patch chains in-process: one deterministic commit per patch, precise failures.

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
import re
import shutil
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pygit2

from untangle import msgid as msgids
from untangle.gitrepo_patch import (MAX_BINARY_BYTES, FilePatch, Hunk, PatchError, apply_delta,
                                    apply_hunks,
                                    parse_diff)
from untangle.gitrepo_blame import _attribution, _linear_chain
from untangle.gitrepo_repo import (CHAIN_REF_PREFIX, COMMITTER_EMAIL, COMMITTER_NAME, LINK_PREFIX, MODE_BLOB, MODE_TREE, _git, _is_null, _open, _peel_commit)

# ---------------------------------------------------------------- results

@dataclass
class AppliedPatch:
    msgid: str | None
    commit: str


@dataclass
class ApplyFailure:
    """Where a chain stopped: the patch, a precise reason, and for a conflict the files,
    the hunks that did not apply and who last touched the lines they wanted."""
    msgid: str | None
    error: str
    files: list[str] = field(default_factory=list)
    hunks: list[dict] = field(default_factory=list)  # {"file", "old_start", "old_lines", ...}
    last_touched: list[dict] = field(default_factory=list)  # {"file", "lines", "commit", "by"}
    line: int | None = None  # corrupt patch: the line of the diff


@dataclass
class ApplyResult:
    status: str  # applied | conflict | failed
    head: str | None = None
    tree: str | None = None
    applied: list[AppliedPatch] = field(default_factory=list)
    failed: ApplyFailure | None = None
    ref: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


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
    msgid = msgids.bare(patch.get("msgid") or "")
    if msgid and not re.search(r"^Link:.*" + re.escape(msgid), body, re.M):
        link = f"Link: {LINK_PREFIX}{msgid}"
        last = body.rsplit("\n\n", 1)[-1]
        if body and all(_TRAILER_RE.match(x) or x.startswith((" ", "\t")) for x in last.split("\n")):
            body = f"{body}\n{link}"
        else:
            body = f"{body}\n\n{link}" if body else link
    return f"{subject}\n\n{body}\n" if body else f"{subject}\n"


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
                max_binary: int = MAX_BINARY_BYTES) -> ApplyResult:
    """Apply patches onto base, each as a real commit, in-process (no index, no checkout).

    Returns an ApplyResult (status applied | conflict | failed, head, tree, applied
    patches, the failure); see the module doc for the ref policy. "failed" means bad input (corrupt patch, missing base),
    "conflict" means a well-formed patch that does not apply.
    """
    r = _open(repo)
    n = len(patches)
    result = ApplyResult(status="applied")
    ref_name = _chain_ref(ref) if ref else None
    base_commit = _peel_commit(r, base) if base else None
    if base_commit is None:
        first = patches[0].get("msgid") if patches else None
        result.status = "failed"
        result.failed = _failure(first, f"base {base!r} not found in {repo}", [], [], [], None)
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
            result.status = "failed"
            result.failed = _failure(patch.get("msgid"), msg, [], [], [], e.line)
            break
        except _Conflict as c:
            result.status = "conflict"
            touched = _last_touched(r, base_commit, head, c.hunks, c.files, result.applied)
            result.failed = _failure(patch.get("msgid"), f"{label}: " + "; ".join(c.errors),
                                        c.files, c.hunks, touched, None)
            break
        try:
            author = _author(patch, base_commit.commit_time)
        except ValueError as e:
            result.status = "failed"
            result.failed = _failure(patch.get("msgid"), f"{label}: {e}", [], [], [], None)
            break
        # Committer date = author date keeps the result deterministic.
        committer = pygit2.Signature(COMMITTER_NAME, COMMITTER_EMAIL, author.time, author.offset)
        oid = r.create_commit(None, author, committer, commit_message(patch), tree_oid, [head.id])
        head = r[oid]
        result.applied.append(AppliedPatch(patch.get("msgid"), str(oid)))
        if progress:
            progress(k, n)
    if result.applied or (not patches and result.status == "applied"):
        result.head, result.tree = str(head.id), str(head.tree_id)
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
    msgid = msgids.bare(patch.get("msgid") or "")
    return f'patch {k} of {n} <{msgid}> "{(patch.get("subject") or "").strip()}"'


def _failure(msgid, error, files, hunks, touched, line) -> ApplyFailure:
    return ApplyFailure(msgid=msgid, error=error, files=files, hunks=hunks, last_touched=touched, line=line)


def _update_refs(r: pygit2.Repository, ref_name: str | None, result: ApplyResult) -> None:
    """Atomic ref writes (libgit2 lock files); see the module doc for the policy."""
    if not ref_name:
        return
    partial = ref_name + "-partial"
    if result.status == "applied" and result.head:
        _set_ref(r, ref_name, result.head)
        with contextlib.suppress(KeyError, pygit2.GitError):
            r.references.delete(partial)
    elif result.head:
        _set_ref(r, partial, result.head)
    result.ref = ref_name if result.status == "applied" else (partial if result.head else None)


def pin(repo: Path, ref: str, sha: str) -> str:
    """Point ref (a name under refs/reviewapp/chains/ unless it starts with refs/) at sha,
    which keeps a run's commits reachable and fetchable; returns the full ref name."""
    name = _chain_ref(ref)
    _set_ref(_open(repo), name, sha)
    return name


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
    by_sha = {a.commit: a.msgid for a in applied}
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
