"""Mirror a public-inbox v2 archive with git and read its mails (the git layer).

A v2 inbox is a set of git repositories ("epochs") `<inbox>/git/0.git`,
`1.git`, ...; each commit adds one mail as the blob `m` (a commit that
removes a mail has no `m`). We keep one bare mirror per epoch, fetch it,
and walk the commits after the last one we ingested, oldest first.

Runs the git program (no library) so the mirrors are plain git on disk.
No Django here: typed results only.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

MAX_EPOCHS = 1000  # probing stops here whatever a server says
MAX_MAIL_BYTES = 50 * 1024 * 1024  # a blob bigger than this is not a mail we read
_MAIL_PATH = "m"  # the blob holding the mail in each commit


class InboxError(Exception):
    """The inbox could not be reached or mirrored (message says why)."""


class NoGitError(InboxError):
    """The server answers but serves no git for this inbox."""


@dataclass(frozen=True)
class Epoch:
    number: int
    url: str  # .../git/N.git


def _git(args: list[str], cwd: Path | None = None, timeout: float = 600,
         input_: bytes | None = None) -> bytes:
    # Never prompt for credentials: a server asking for them is an error here.
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false"}
    res = subprocess.run(["git", *args], cwd=cwd, input=input_, capture_output=True,
                         timeout=timeout, env=env)
    if res.returncode != 0:
        raise InboxError(f"git {args[0]} failed: {res.stderr.decode(errors='replace').strip()[-500:]}")
    return res.stdout


def epochs(inbox_url: str, timeout: float = 30) -> list[Epoch]:
    """The epochs the server offers: its manifest.js.gz, else probing 0.git, 1.git, ..."""
    base = inbox_url.rstrip("/")
    # The manifest can lag (public-inbox-httpd caches it): probe past its end too.
    numbers = _manifest_epochs(base, timeout) or []
    numbers += _probed_epochs(base, timeout, start=max(numbers, default=-1) + 1)
    if not numbers:
        raise NoGitError(f"{base} serves no git epochs")
    return [Epoch(n, f"{base}/git/{n}.git") for n in sorted(numbers)]


def _manifest_epochs(base: str, timeout: float) -> list[int] | None:
    # grokmirror's manifest: {"/<inbox>/git/0.git": {...}, ...}
    try:
        with urllib.request.urlopen(f"{base}/manifest.js.gz", timeout=timeout) as resp:
            data = json.loads(gzip.decompress(resp.read(16 * 1024 * 1024)))
    except (urllib.error.URLError, OSError, ValueError, EOFError):
        return None
    found = []
    for key in data if isinstance(data, dict) else ():
        tail = key.rstrip("/").rsplit("/", 1)[-1]
        if key.rstrip("/").rsplit("/", 2)[-2:-1] == ["git"] and tail.endswith(".git") \
                and tail[:-4].isdigit():
            found.append(int(tail[:-4]))
    return found or None


def _probed_epochs(base: str, timeout: float, start: int = 0) -> list[int]:
    found = []
    for n in range(start, MAX_EPOCHS):
        try:
            _git(["ls-remote", f"{base}/git/{n}.git", "HEAD"], timeout=timeout)
        except InboxError:
            break
        found.append(n)
    return found


def fetch(epoch: Epoch, mirror: Path, timeout: float = 600) -> str | None:
    """Create or update the bare mirror of one epoch; return its head commit (None: empty)."""
    if not (mirror / "HEAD").exists():
        mirror.parent.mkdir(parents=True, exist_ok=True)
        tmp = mirror.with_name(mirror.name + ".tmp")
        if tmp.exists():  # a crash while creating it: start that epoch afresh
            shutil.rmtree(tmp)
        _git(["init", "--bare", "-q", str(tmp)])
        _git(["remote", "add", "--mirror=fetch", "origin", epoch.url], cwd=tmp)
        tmp.rename(mirror)
    _git(["fetch", "-q", "--prune", "origin"], cwd=mirror, timeout=timeout)
    return head(mirror)


def head(mirror: Path) -> str | None:
    refs = _git(["for-each-ref", "--format=%(objectname) %(refname)", "refs/heads"], cwd=mirror)
    lines = [line.split() for line in refs.decode().splitlines() if line.strip()]
    if not lines:
        return None
    by_name = {name: sha for sha, name in lines}
    return by_name.get("refs/heads/master") or lines[0][0]


def new_commits(mirror: Path, tip: str, after: str | None) -> list[str]:
    """Commits after *after* up to *tip*, oldest first (all of them when after is None)."""
    span = f"{after}..{tip}" if after else tip
    out = _git(["rev-list", "--reverse", "--first-parent", span], cwd=mirror)
    return out.decode().split()


def read_mails(mirror: Path, commits: list[str]) -> Iterator[tuple[str, bytes | None]]:
    """(commit, raw mail) per commit; None where the commit adds no mail (a removal)
    or its blob is larger than MAX_MAIL_BYTES (sizes are checked before reading)."""
    if not commits:
        return
    request = "".join(f"{c}:{_MAIL_PATH}\n" for c in commits).encode()
    sizes = _git(["cat-file", "--batch-check"], cwd=mirror, input_=request).decode().splitlines()
    wanted = []
    for commit, line in zip(commits, sizes):
        parts = line.split()
        ok = len(parts) == 3 and parts[1] == "blob" and int(parts[2]) <= MAX_MAIL_BYTES
        wanted.append(parts[0] if ok else None)
    blobs = [w for w in wanted if w]
    out = _git(["cat-file", "--batch"], cwd=mirror,
               input_="".join(f"{b}\n" for b in blobs).encode()) if blobs else b""
    pos = 0
    for commit, blob_id in zip(commits, wanted):
        if blob_id is None:
            yield commit, None
            continue
        end = out.index(b"\n", pos)
        size = int(out[pos:end].split()[2])
        pos = end + 1
        yield commit, out[pos:pos + size]
        pos += size + 1
