"""The git layer of list sync on a real git repository shaped like a public-inbox epoch."""
import subprocess
from pathlib import Path

from untangle import gitinbox


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "a",
                               "GIT_COMMITTER_EMAIL": "a@x", "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
                          ).stdout.strip()


def _epoch(tmp_path: Path) -> tuple[Path, list[str]]:
    # Like public-inbox: each commit writes one mail as `m`; a removal commit drops it.
    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "-q", "-b", "master")
    commits = []
    for i, body in enumerate([b"first", b"x" * 5000, None, b"third"]):
        if body is None:
            _git(work, "rm", "-q", "m")
            (work / "d").write_bytes(b"removed")
            _git(work, "add", "d")
        else:
            (work / "m").write_bytes(b"Message-ID: <%d@x>\n\n" % i + body)
            _git(work, "add", "m")
        _git(work, "commit", "-q", "-m", f"c{i}")
        commits.append(_git(work, "rev-parse", "HEAD"))
    return work, commits


def test_new_commits_are_the_ones_after_the_cursor_oldest_first(tmp_path):
    work, commits = _epoch(tmp_path)
    mirror = tmp_path / "mirror.git"
    tip = gitinbox.fetch(gitinbox.Epoch(0, str(work)), mirror)
    assert tip == commits[-1]
    assert gitinbox.new_commits(mirror, tip, None) == commits
    assert gitinbox.new_commits(mirror, tip, commits[1]) == commits[2:]
    assert gitinbox.new_commits(mirror, tip, tip) == []


def test_a_removal_commit_and_an_oversized_mail_yield_no_mail(tmp_path, monkeypatch):
    work, commits = _epoch(tmp_path)
    mirror = tmp_path / "mirror.git"
    gitinbox.fetch(gitinbox.Epoch(0, str(work)), mirror)
    monkeypatch.setattr(gitinbox, "MAX_MAIL_BYTES", 1000)
    got = list(gitinbox.read_mails(mirror, commits))
    assert [c for c, _ in got] == commits
    assert got[0][1] == b"Message-ID: <0@x>\n\nfirst"
    assert got[1][1] is None and got[2][1] is None
    assert got[3][1] == b"Message-ID: <3@x>\n\nthird"


def test_fetch_updates_an_existing_mirror(tmp_path):
    work, commits = _epoch(tmp_path)
    mirror = tmp_path / "mirror.git"
    gitinbox.fetch(gitinbox.Epoch(0, str(work)), mirror)
    (work / "m").write_bytes(b"Message-ID: <new@x>\n\nnew")
    _git(work, "add", "m")
    _git(work, "commit", "-q", "-m", "new")
    tip = gitinbox.fetch(gitinbox.Epoch(0, str(work)), mirror)
    assert gitinbox.new_commits(mirror, tip, commits[-1]) == [_git(work, "rev-parse", "HEAD")]
