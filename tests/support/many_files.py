"""A git tree with thousands of files and a mail whose one patch changes all of them.

Built with `git fast-import` (one process, seconds for 5,000 files), used by
tests/integration/test_apply_many_files.py and bench/hostile_bench.py.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

BODY = b"".join(b"line %d\n" % i for i in range(20))
ENV = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent", "PATH": "/usr/bin:/bin"}


def paths(n_files: int, n_dirs: int = 50) -> list[str]:
    per = -(-n_files // n_dirs)
    return [f"d{i // per}/f{i % per}.c" for i in range(n_files)]


def build_repo(dest: Path, n_files: int, later_commits: int = 0) -> Path:
    """A repository at dest: one commit with n_files files on master, then
    later_commits commits on master each changing d0/later.c (the other
    directories' trees stay the same, as in a real history)."""
    subprocess.run(["git", "init", "-q", "-b", "master", str(dest)], check=True, env=ENV)
    lines = [b"blob\nmark :1\ndata %d\n" % len(BODY) + BODY,
             b"commit refs/heads/master\nmark :2\ncommitter T <t@x> 1700000000 +0000\ndata 5\nbase\n"]
    lines += [b"M 100644 :1 %s\n" % p.encode() for p in paths(n_files)]
    for k in range(later_commits):
        text = b"%d\n" % k
        lines.append(b"\ncommit refs/heads/master\ncommitter T <t@x> %d +0000\ndata 6\nlater\n"
                     b"M 100644 inline d0/later.c\ndata %d\n%s" % (1700000001 + k, len(text), text))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=dest, input=b"".join(lines) + b"\n",
                   check=True, env=ENV)
    return dest


def blob_id(repo: Path) -> str:
    return subprocess.run(["git", "hash-object", "--stdin"], cwd=repo, input=BODY, capture_output=True,
                          check=True, env=ENV).stdout.decode().strip()


def diff(n_files: int, old_blob: str) -> str:
    """One patch changing line 1 of every file (old_blob: their pre-image id)."""
    return "".join(f"diff --git a/{p} b/{p}\nindex {old_blob[:12]}..{'1' * 12} 100644\n--- a/{p}\n+++ b/{p}\n"
                   "@@ -1,3 +1,3 @@\n line 0\n-line 1\n+LINE 1\n line 2\n" for p in paths(n_files))


def mail(n_files: int, old_blob: str, msgid: str = "many-files-1@example.org") -> bytes:
    return (f"From: Ann Author <ann@example.org>\nTo: list@example.org\n"
            f"Subject: [PATCH] tree-wide: change {n_files} files\nDate: Mon, 5 May 2025 10:00:00 +0000\n"
            f"Message-ID: <{msgid}>\n\nChange them all.\n\nSigned-off-by: Ann Author <ann@example.org>\n"
            f"---\n{diff(n_files, old_blob)}-- \n2.45.0\n").encode()


def measure(root: Path, n_files: int, later_commits: int) -> dict:
    """In this process: guess a base for the n_files-file patch over later_commits
    commits that do not match (the full walk), then apply it; peak RSS after both."""
    import time

    from untangle import gitrepo
    repo = build_repo(root / "many.git", n_files, later_commits)
    blob = blob_id(repo)
    started = time.monotonic()
    miss = gitrepo.guess_base(repo, [(p, "1234567") for p in paths(n_files)], ["master"],
                              depth=later_commits + 1)
    guessed = time.monotonic()
    patch = {"msgid": "many-files-1@example.org", "subject": "s", "author_name": "Ann",
             "author_email": "ann@example.org", "date": None, "message": "m", "diff": diff(n_files, blob)}
    result = gitrepo.apply_chain(repo, "master", [patch])
    return {"files": n_files, "commits_walked": len(miss.attempts), "guess_found": miss.sha,
            "status": result.status, "guess_s": round(guessed - started, 2),
            "apply_s": round(time.monotonic() - guessed, 2),
            "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak RSS since exec (VmHWM; ru_maxrss would include the
    parent's RSS at fork, a pytest process's for example)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


if __name__ == "__main__":
    import json
    import sys
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(measure(Path(tmp), int(sys.argv[1]), int(sys.argv[2]))))
