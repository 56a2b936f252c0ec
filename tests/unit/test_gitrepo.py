"""untangle.gitrepo against real git repositories built in tmp_path."""
from __future__ import annotations

import email
import email.policy
import email.utils
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from untangle import gitrepo
from untangle.gitrepo_patch import PatchError, parse_diff

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Test Author", "GIT_AUTHOR_EMAIL": "author@example.org",
    "GIT_COMMITTER_NAME": "Test Committer", "GIT_COMMITTER_EMAIL": "committer@example.org",
    "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
}
REPO_ROOT = Path(__file__).resolve().parents[2]


def git(cwd: Path, *args: str, input: bytes | None = None, env: dict | None = None) -> str:
    res = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True,
                         env={**ENV, **(env or {})})
    if res.returncode:
        raise AssertionError(f"git {' '.join(args)} failed: {res.stderr.decode()}")
    return res.stdout.decode("utf-8", "replace")


def new_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "master")
    return path


_tick = [1700000000]


def commit(repo: Path, msg: str, files: dict[str, str | bytes | None]) -> str:
    """Write files (None deletes) and commit; dates step so history is ordered."""
    for name, content in files.items():
        p = repo / name
        if content is None:
            git(repo, "rm", "-q", name)
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
        git(repo, "add", name)
    _tick[0] += 60
    date = f"@{_tick[0]} +0000"
    git(repo, "commit", "-q", "-m", msg, env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date})
    return git(repo, "rev-parse", "HEAD").strip()


def lines(n: int, tag: str = "line") -> str:
    return "".join(f"{tag} {i}\n" for i in range(1, n + 1))


def mail_to_patch(raw: str) -> dict:
    """The fields the lead extracts from a mail, parsed here with the email module."""
    msg = email.message_from_string(raw, policy=email.policy.default)
    body = msg.get_content()
    message, _, diff = ("\n" + body).partition("\n---\n")
    name, addr = email.utils.parseaddr(str(msg["From"]))
    subject = " ".join(str(msg["Subject"]).split())
    if subject.startswith("["):
        subject = subject.split("]", 1)[1].strip()
    return {"msgid": str(msg["Message-ID"]).strip("<>"), "author_name": name, "author_email": addr,
            "date": str(msg["Date"]), "subject": subject, "message": message, "diff": diff}


def format_patches(repo: Path, rng: str, *extra: str) -> list[dict]:
    """git format-patch rng, one dict per patch, with unique message ids."""
    out = git(repo, "format-patch", "--stdout", "--thread", "--binary", *extra, rng)
    mails = ["From " + m for m in out.split("\nFrom ")[0:]]
    mails[0] = mails[0][len("From "):]
    patches = []
    for i, m in enumerate(mails):
        p = mail_to_patch(m)
        p["msgid"] = f"{rng.replace('.', '-')}-{i + 1}@example.org"
        patches.append(p)
    return patches


def am_tree(repo: Path, base: str, rng: str, tmp: Path, three_way: bool = False) -> str:
    """Tree sha that `git am` produces for the same patches (the reference)."""
    mbox = tmp / f"am-{abs(hash(rng))}.mbox"
    mbox.write_text(git(repo, "format-patch", "--stdout", "--binary", rng))
    wt = tmp / f"am-wt-{abs(hash(rng))}"
    git(repo, "worktree", "add", "-q", "--detach", str(wt), base)
    try:
        git(wt, "am", "-q", *(["-3"] if three_way else []), str(mbox))
        return git(wt, "rev-parse", "HEAD^{tree}").strip()
    finally:
        git(repo, "worktree", "remove", "--force", str(wt))


def tree_of(repo: Path, rev: str) -> str:
    return git(repo, "rev-parse", f"{rev}^{{tree}}").strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return new_repo(tmp_path / "repo")


# ---------------------------------------------------------------- apply_chain

def test_chain_of_three_becomes_three_commits_with_mail_authorship(repo: Path):
    base = commit(repo, "base", {"a.c": lines(30), "b.c": lines(10, "b")})
    git(repo, "checkout", "-q", "-b", "work")
    commit(repo, "one", {"a.c": lines(30).replace("line 5\n", "line five\n")})
    commit(repo, "two\n\nBody text.\n\nSigned-off-by: X <x@example.org>", {"b.c": lines(10, "b") + "b 11\n"})
    commit(repo, "three", {"a.c": lines(30).replace("line 5\n", "line five\n").replace("line 25\n", "25\n")})
    patches = format_patches(repo, f"{base}..work")
    patches[1]["date"] = "2024-03-01T12:30:00+01:00"  # ISO dates are accepted too
    seen = []
    res = gitrepo.apply_chain(repo, base, patches, ref="chain-1", progress=lambda k, n: seen.append((k, n)))
    assert res.status == "applied" and res.failed is None, res.failed
    assert [a.msgid for a in res.applied] == [p["msgid"] for p in patches]
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert res.tree == tree_of(repo, "work")
    assert git(repo, "rev-parse", "refs/reviewapp/chains/chain-1").strip() == res.head
    log = git(repo, "log", "--format=%an|%ae|%aI|%cn|%ce|%s", f"{base}..{res.head}").splitlines()
    assert log[1] == "Test Author|author@example.org|2024-03-01T12:30:00+01:00|reviewapp|reviewapp@localhost|two"
    assert [l.split("|")[-1] for l in log] == ["three", "two", "one"]
    info = gitrepo.commit_info(repo, res.applied[1].commit)
    # The Link joins the trailer block; the body is kept.
    assert info["message"] == ("two\n\nBody text.\n\nSigned-off-by: X <x@example.org>\n"
                               f"Link: https://patch.msgid.link/{patches[1]['msgid']}\n")
    assert info["parents"] == [res.applied[0].commit]


def test_existing_link_to_the_same_message_is_not_repeated():
    msg = gitrepo.commit_message({"msgid": "<abc@x>", "subject": "[PATCH v2 3/7] mm: fix",
                                  "message": "Fix it.\n\nLink: https://lore.kernel.org/r/abc@x\n"})
    assert msg == "mm: fix\n\nFix it.\n\nLink: https://lore.kernel.org/r/abc@x\n"
    plain = gitrepo.commit_message({"msgid": "m@x", "subject": "s", "message": "Just prose."})
    assert plain == "s\n\nJust prose.\n\nLink: https://patch.msgid.link/m@x\n"


def test_same_patches_on_same_base_give_same_commits(repo: Path):
    base = commit(repo, "base", {"f": lines(5)})
    git(repo, "checkout", "-q", "-b", "w")
    commit(repo, "x", {"f": lines(6)})
    patches = format_patches(repo, f"{base}..w")
    a = gitrepo.apply_chain(repo, base, patches)
    b = gitrepo.apply_chain(repo, base, patches)
    assert a.head == b.head and a.status == "applied"


def test_result_tree_matches_git_am_for_new_deleted_renamed_mode_and_binary(repo: Path, tmp_path: Path):
    big = lines(40, "keep")
    base = commit(repo, "base", {"old.txt": big, "gone.c": lines(8), "script.sh": "#!/bin/sh\necho hi\n",
                                 "img.bin": bytes(range(256)) * 8, "dir/x.h": lines(3)})
    git(repo, "checkout", "-q", "-b", "w")
    commit(repo, "add", {"new/added.c": lines(4, "new"), "empty": ""})
    commit(repo, "delete", {"gone.c": None})
    git(repo, "mv", "old.txt", "renamed.txt")
    commit(repo, "rename+edit", {"renamed.txt": big.replace("keep 20\n", "changed 20\n")})
    (repo / "script.sh").chmod(0o755)
    git(repo, "add", "script.sh")
    commit(repo, "mode", {})
    commit(repo, "binary", {"img.bin": bytes(range(256)) * 7 + b"\x00\x01tail", "new.bin": b"\x00\xff" * 50})
    commit(repo, "dir to file", {"dir/x.h": None, "dir2": "now a file\n"})
    patches = format_patches(repo, f"{base}..w")
    res = gitrepo.apply_chain(repo, base, patches)
    assert res.status == "applied", res.failed
    assert res.tree == tree_of(repo, "w") == am_tree(repo, base, f"{base}..w", tmp_path)
    ls = git(repo, "ls-tree", res.head, "script.sh")
    assert ls.startswith("100755")
    binary = patches[-2]["diff"]
    assert "GIT binary patch\nliteral" in binary and "GIT binary patch\ndelta" in binary


def test_patch_that_needs_an_earlier_one_applies_only_after_it(repo: Path):
    base = commit(repo, "base", {"mm/page.c": lines(50)})
    git(repo, "checkout", "-q", "-b", "w")
    commit(repo, "introduce helper", {"mm/page.c": lines(50).replace("line 20\n", "helper();\n")})
    commit(repo, "use helper", {"mm/page.c": lines(50).replace("line 20\n", "helper(1);\n")})
    p1, p2 = format_patches(repo, f"{base}..w")
    alone = gitrepo.apply_chain(repo, base, [p2])
    assert alone.status == "conflict" and alone.head is None
    both = gitrepo.apply_chain(repo, base, [p1, p2])
    assert both.status == "applied"
    assert gitrepo.read_file(repo, both.head, "mm/page.c").count(b"helper(1);") == 1


def test_conflict_names_patch_file_hunk_and_the_chain_patch_that_touched_the_lines(repo: Path):
    base = commit(repo, "base", {"fs/inode.c": lines(60), "other.c": lines(5)})
    git(repo, "checkout", "-q", "-b", "a")
    commit(repo, "A edits 30", {"fs/inode.c": lines(60).replace("line 30\n", "A 30\n")})
    git(repo, "checkout", "-q", "-b", "b", base)
    commit(repo, "B edits 31", {"fs/inode.c": lines(60).replace("line 31\n", "B 31\n")})
    commit(repo, "B touches other", {"other.c": lines(6)})
    [pa] = format_patches(repo, f"{base}..a")
    pb1, pb2 = format_patches(repo, f"{base}..b")
    res = gitrepo.apply_chain(repo, base, [pa, pb1, pb2], ref="mixed")
    assert res.status == "conflict"
    assert [a.msgid for a in res.applied] == [pa["msgid"]]
    f = res.failed
    assert f.msgid == pb1["msgid"]
    assert "patch 2 of 3" in f.error and "fs/inode.c" in f.error and "hunk #1" in f.error
    assert f.files == ["fs/inode.c"]
    assert f.hunks == [{"file": "fs/inode.c", "header": "@@ -28,7 +28,7 @@ line 27", "old_start": 28, "old_lines": 7}]
    by = {t["by"] for t in f.last_touched}
    assert by == {"base", pa["msgid"]}
    mine = [t for t in f.last_touched if t["by"] == pa["msgid"]]
    assert mine == [{"file": "fs/inode.c", "lines": "30-30", "commit": res.applied[0].commit,
                     "by": pa["msgid"]}]
    # What applied is kept under the -partial ref; the chain ref is not written.
    assert git(repo, "rev-parse", "refs/reviewapp/chains/mixed-partial").strip() == res.head
    assert "refs/reviewapp/chains/mixed\n" not in git(repo, "for-each-ref", "--format=%(refname)") + "\n"


def test_conflict_against_base_lines_is_blamed_on_base(repo: Path, tmp_path: Path):
    other = new_repo(tmp_path / "other")
    commit(other, "old base", {"k.c": lines(20)})
    commit(other, "change", {"k.c": lines(20).replace("line 10\n", "ten\n")})
    [p] = format_patches(other, "HEAD~1..HEAD")
    base = commit(repo, "base", {"k.c": lines(20).replace("line 10\n", "LINE 10\n")})
    res = gitrepo.apply_chain(repo, base, [p])
    assert res.status == "conflict"
    assert res.failed.last_touched[0] == {"file": "k.c", "lines": "7-13", "commit": base, "by": "base"}


def test_corrupt_patch_fails_with_its_line_and_keeps_what_applied(repo: Path):
    base = commit(repo, "base", {"a": lines(10)})
    git(repo, "checkout", "-q", "-b", "w")
    commit(repo, "one", {"a": lines(11)})
    commit(repo, "two", {"a": lines(12)})
    p1, p2 = format_patches(repo, f"{base}..w")
    diff_lines = p2["diff"].split("\n")
    hunk_at = next(i for i, l in enumerate(diff_lines) if l.startswith("@@"))
    diff_lines[hunk_at + 2] = "garbage without a prefix"
    p2["diff"] = "\n".join(diff_lines)
    res = gitrepo.apply_chain(repo, base, [p1, p2], ref="c")
    assert res.status == "failed"
    assert res.failed.msgid == p2["msgid"]
    assert res.failed.line == hunk_at + 3
    assert f"corrupt patch at line {hunk_at + 3}" in res.failed.error
    assert res.head == res.applied[0].commit
    assert gitrepo.read_file(repo, res.head, "a") == lines(11).encode()


def test_truncated_hunk_and_empty_patch_are_failures_not_successes(repo: Path):
    base = commit(repo, "base", {"a": lines(10)})
    truncated = "diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1,3 +1,4 @@\n line 1\n+x\n line 2\n"
    res = gitrepo.apply_chain(repo, base, [{"msgid": "t@x", "subject": "t", "diff": truncated}])
    assert res.status == "failed" and "corrupt patch at line 7" in res.failed.error
    res = gitrepo.apply_chain(repo, base, [{"msgid": "e@x", "subject": "e", "diff": "just prose\n"}])
    assert res.status == "failed" and "empty" in res.failed.error


def test_hunk_that_undercounts_its_lines_is_refused(repo: Path):
    base = commit(repo, "base", {"a": lines(5)})
    diff = "diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1,2 +1,2 @@\n-line 1\n+one\n line 2\n+extra\n"
    res = gitrepo.apply_chain(repo, base, [{"msgid": "u@x", "subject": "u", "diff": diff}])
    assert res.status == "failed" and "corrupt patch at line 8" in res.failed.error


def test_empty_chain_is_the_base(repo: Path):
    base = commit(repo, "base", {"a": "x\n"})
    res = gitrepo.apply_chain(repo, base, [], ref="empty")
    assert res.status == "applied" and res.head == base and res.tree == tree_of(repo, base)


def test_missing_base_is_a_failure(repo: Path):
    commit(repo, "base", {"a": "x\n"})
    res = gitrepo.apply_chain(repo, "deadbeef" * 5, [{"msgid": "m@x", "subject": "s", "diff": ""}])
    assert res.status == "failed" and "not found" in res.failed.error
    assert res.head is None and res.applied == []


def test_three_way_merge_when_context_changed_since_the_patch_was_written(repo: Path, tmp_path: Path):
    v1 = commit(repo, "v1", {"drivers/x.c": lines(40)})
    git(repo, "checkout", "-q", "-b", "series")
    commit(repo, "series edit", {"drivers/x.c": lines(40).replace("line 20\n", "twenty\n")})
    git(repo, "checkout", "-q", "master")
    upstream = commit(repo, "upstream edit in context",
                      {"drivers/x.c": lines(40).replace("line 23\n", "twenty-three\n")})
    patches = format_patches(repo, f"{v1}..series")
    res = gitrepo.apply_chain(repo, upstream, patches)
    assert res.status == "applied", res.failed
    text = gitrepo.read_file(repo, res.head, "drivers/x.c").decode()
    assert "twenty\n" in text and "twenty-three\n" in text
    assert res.tree == am_tree_onto(repo, upstream, f"{v1}..series", tmp_path)


def am_tree_onto(repo: Path, onto: str, rng: str, tmp: Path) -> str:
    mbox = tmp / "onto.mbox"
    mbox.write_text(git(repo, "format-patch", "--stdout", rng))
    wt = tmp / "onto-wt"
    git(repo, "worktree", "add", "-q", "--detach", str(wt), onto)
    try:
        git(wt, "am", "-q", "-3", str(mbox))
        return git(wt, "rev-parse", "HEAD^{tree}").strip()
    finally:
        git(repo, "worktree", "remove", "--force", str(wt))


def test_offset_hunk_applies_without_three_way(repo: Path, tmp_path: Path):
    other = new_repo(tmp_path / "o")
    commit(other, "b", {"f": lines(30)})
    commit(other, "c", {"f": lines(30).replace("line 15\n", "fifteen\n")})
    [p] = format_patches(other, "HEAD~1..HEAD")
    base = commit(repo, "shifted", {"f": "new top 1\nnew top 2\n" + lines(30)})
    res = gitrepo.apply_chain(repo, base, [p])
    assert res.status == "applied"
    assert gitrepo.read_file(repo, res.head, "f").split(b"\n")[16] == b"fifteen"


def test_two_processes_apply_different_chains_to_one_bare_repo(repo: Path, tmp_path: Path):
    base = commit(repo, "base", {f"f{i}.c": lines(30, f"f{i}") for i in range(6)})
    expected = {}
    jobs = {}
    for name in ("left", "right"):
        git(repo, "checkout", "-q", "-b", name, base)
        for i in range(25):
            f = f"f{i % 6}.c"
            cur = (repo / f).read_text()
            commit(repo, f"{name} {i}", {f: cur.replace(f"{i % 30 + 1}\n", f"{i % 30 + 1} {name}\n", 1)})
        expected[name] = tree_of(repo, name)
        jobs[name] = format_patches(repo, f"{base}..{name}")
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    # Both processes import, say "ready", wait for the go file, then apply the
    # chain several times (each to its own ref) so that the writes overlap.
    script = textwrap.dedent("""
        import json, os, sys, time
        from untangle import gitrepo
        repo, base, ref, path, go = sys.argv[1:]
        patches = json.load(open(path))
        print("ready", flush=True)
        while not os.path.exists(go):
            time.sleep(0.001)
        results = [gitrepo.apply_chain(repo, base, patches, ref=f"{ref}-{i}") for i in range(5)]
        print(json.dumps([r.to_json() for r in results]))
    """)
    go = tmp_path / "go"
    procs = {}
    for name, patches in jobs.items():
        pj = tmp_path / f"{name}.json"
        pj.write_text(json.dumps(patches))
        procs[name] = subprocess.Popen([sys.executable, "-c", script, str(bare), base, name, str(pj), str(go)],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT,
                                       env={**ENV, "PYTHONPATH": str(REPO_ROOT)})
    for p in procs.values():
        assert p.stdout.readline().strip() == b"ready"
    go.touch()
    for name, p in procs.items():
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        results = json.loads(out)
        assert {r["status"] for r in results} == {"applied"}
        assert {r["tree"] for r in results} == {expected[name]}
        assert len({r["head"] for r in results}) == 1  # deterministic commits
        for i in range(5):
            ref = f"refs/reviewapp/chains/{name}-{i}^{{tree}}"
            assert git(bare, "rev-parse", ref).strip() == expected[name]
    git(bare, "fsck", "--strict", "--no-progress")


# ---------------------------------------------------------------- blame

def blame_cli(repo: Path, base: str, head: str, path: str) -> list[str | None]:
    out = git(repo, "blame", "--porcelain", f"{base}..{head}", "--", path)
    shas, boundary, cur = [], set(), None
    for line in out.split("\n"):
        parts = line.split(" ")
        if len(parts) >= 3 and len(parts[0]) == 40 and parts[1].isdigit():
            cur = parts[0]
        elif line == "boundary":
            boundary.add(cur)
        elif line.startswith("\t"):
            shas.append(cur)
    return [None if s in boundary else s for s in shas]


def test_blame_matches_git_blame_over_edits_rename_and_readd(repo: Path):
    base = commit(repo, "base", {"a.c": lines(20), "b.c": lines(8, "b")})
    c1 = commit(repo, "edit", {"a.c": lines(20).replace("line 3\n", "three\n")})
    git(repo, "mv", "a.c", "moved.c")
    c2 = commit(repo, "rename", {"moved.c": lines(20).replace("line 3\n", "three\n") + "tail\n"})
    c3 = commit(repo, "delete b", {"b.c": None})
    c4 = commit(repo, "re-add b", {"b.c": lines(8, "b")})
    c5 = commit(repo, "edit b", {"b.c": lines(8, "b").replace("b 2\n", "two\n")})
    got = gitrepo.blame(repo, base, c5, "moved.c")
    assert got == blame_cli(repo, base, c5, "moved.c")
    assert got[2] == c1 and got[20] == c2 and got[0] is None
    got_b = gitrepo.blame(repo, base, c5, "b.c")
    assert got_b == blame_cli(repo, base, c5, "b.c")
    assert got_b[1] == c5 and set(got_b) - {c5} == {c4}
    assert gitrepo.blame(repo, base, c3, "moved.c") == got[:21]


def test_blame_of_5000_line_file_touched_by_many_commits_is_exact_and_fast(repo: Path):
    content = lines(5000).split("\n")[:-1]
    base = commit(repo, "base", {"big.c": "\n".join(content) + "\n"})
    for i in range(40):
        for j in range(i * 100, i * 100 + 30, 3):
            content[j] = f"c{i} {j}"
        content.insert(i * 120, f"inserted {i}")
        head = commit(repo, f"c{i}", {"big.c": "\n".join(content) + "\n"})
    t = time.perf_counter()
    got = gitrepo.blame(repo, base, head, "big.c")
    elapsed = time.perf_counter() - t
    assert got == blame_cli(repo, base, head, "big.c")
    assert len(got) == 5040 and elapsed < 1.0


def test_blame_of_missing_file_raises(repo: Path):
    base = commit(repo, "base", {"a": "x\n"})
    with pytest.raises(FileNotFoundError):
        gitrepo.blame(repo, base, base, "nope")


# ---------------------------------------------------------------- guess_base

def test_guess_base_picks_newest_matching_commit_and_records_rejections(repo: Path):
    commit(repo, "c1", {"mm/a.c": lines(5), "mm/b.c": "b\n"})
    c2 = commit(repo, "c2", {"mm/a.c": lines(6)})
    c3 = commit(repo, "c3", {"mm/other.c": "unrelated\n"})
    c4 = commit(repo, "c4", {"mm/a.c": lines(7)})
    c5 = commit(repo, "c5", {"mm/new.c": "exists now\n"})
    blob_a = git(repo, "rev-parse", f"{c2}:mm/a.c").strip()[:12]
    blob_b = git(repo, "rev-parse", f"{c2}:mm/b.c").strip()[:7]
    res = gitrepo.guess_base(repo, [("mm/a.c", blob_a), ("mm/b.c", blob_b), ("mm/new.c", "0000000")],
                             ["master", "no-such-branch"])
    assert res.sha == c3  # c3 still has c2's blobs and is newer
    revs = [a.rev for a in res.attempts if a.branch == "master"]
    assert revs == [c5, c4, c3]
    reasons = {a.rev: a.reason for a in res.attempts}
    assert "mm/a.c" in reasons[c5] or "mm/new.c" in reasons[c5]
    assert reasons[c4].startswith("mm/a.c: blob")
    assert reasons[c3] == "match"
    assert reasons["no-such-branch"] == "branch not found"
    none = gitrepo.guess_base(repo, [("mm/a.c", "abcdef1")], ["master"], depth=2)
    assert none.sha is None and none.attempts[-1].reason.startswith("depth limit")


# ---------------------------------------------------------------- mirrors, revisions, trees

def test_mirror_from_path_and_from_bundle_then_fetch(repo: Path, tmp_path: Path):
    c1 = commit(repo, "one", {"a": "1\n"})
    git(repo, "branch", "side")
    git(repo, "tag", "v1")
    data = tmp_path / "data"
    m = gitrepo.mirror_add(data, "src", str(repo), branches=["master"])
    assert m == data / "mirrors" / "src.git"
    assert gitrepo.resolve(m, "master") == c1 and gitrepo.resolve(m, "v1") == c1
    assert gitrepo.resolve(m, "side") is None  # only the asked-for branch
    assert gitrepo.default_branch(m) == "master"
    c2 = commit(repo, "two", {"a": "2\n"})
    gitrepo.mirror_fetch(m)
    assert gitrepo.resolve(m, "master") == c2
    assert gitrepo.resolve(m, c2[:8]) == c2
    bundle = tmp_path / "repo.bundle"
    git(repo, "bundle", "create", str(bundle), "--all")
    mb = gitrepo.mirror_add(data, "fromBundle", str(bundle))
    assert gitrepo.resolve(mb, "side") == c1 and gitrepo.resolve(mb, "master") == c2
    with pytest.raises(ValueError):
        gitrepo.mirror_add(data, "../evil", str(repo))


def test_fetch_of_every_ref_keeps_the_chain_and_integration_refs_the_mirror_wrote(repo: Path, tmp_path: Path):
    c1 = commit(repo, "one", {"a": "1\n"})
    git(repo, "branch", "gone-upstream")
    m = gitrepo.mirror_add(tmp_path / "data", "all", str(repo))  # every ref, pruned at fetch
    for ref in ("refs/reviewapp/chains/7", "refs/heads/integration/linux-mm"):
        git(m, "update-ref", ref, c1)
    git(repo, "branch", "-D", "gone-upstream")
    c2 = commit(repo, "two", {"a": "2\n"})
    gitrepo.mirror_fetch(m)
    assert gitrepo.resolve(m, "master") == c2
    assert gitrepo.resolve(m, "refs/heads/gone-upstream") is None  # still pruned
    assert gitrepo.resolve(m, "refs/reviewapp/chains/7") == c1
    assert gitrepo.resolve(m, "refs/heads/integration/linux-mm") == c1


def test_a_new_mirror_borrows_the_objects_of_a_local_copy_and_fetches_only_what_it_lacks(repo: Path, tmp_path: Path):
    for i in range(20):
        commit(repo, f"c{i}", {f"f{i}": lines(50, f"v{i}")})
    copy = tmp_path / "local-copy.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(copy))
    newer = commit(repo, "after the copy", {"late": "new\n"})
    m = gitrepo.mirror_add(tmp_path / "data", "borrowed", str(repo),
                           references=[str(copy), str(tmp_path / "no-such-copy")])
    assert (m / "objects" / "info" / "alternates").read_text().strip() == str((copy / "objects").resolve())
    assert gitrepo.resolve(m, "master") == newer
    own = dict(line.split(": ") for line in git(m, "count-objects", "-v").splitlines())
    total = int(git(m, "rev-list", "--objects", "--all").count("\n"))
    assert int(own["count"]) + int(own["in-pack"]) < 10 < total  # the late commit's few objects only
    plain = gitrepo.mirror_add(tmp_path / "data", "plain", str(repo))
    assert not (plain / "objects" / "info" / "alternates").exists()


def test_resolve_unknown_revision_is_none(repo: Path):
    commit(repo, "one", {"a": "1\n"})
    assert gitrepo.resolve(repo, "nope") is None
    assert gitrepo.resolve(repo, "--all") is None


def test_tree_reads_diff_changed_files_range_diff(repo: Path):
    a = commit(repo, "a", {"src/x.c": "x\n", "top": "t\n"})
    b = commit(repo, "b", {"src/x.c": "y\n", "src/new.c": "n\n"})
    entries = gitrepo.list_tree(repo, b, "src")
    assert {(e["name"], e["path"], e["type"], e["size"]) for e in entries} == {
        ("x.c", "src/x.c", "blob", 2), ("new.c", "src/new.c", "blob", 2)}
    assert [(e["type"], e["mode"]) for e in gitrepo.list_tree(repo, b) if e["name"] == "src"] == [("tree", "040000")]
    assert gitrepo.read_file(repo, b, "src/x.c") == b"y\n"
    with pytest.raises(FileNotFoundError):
        gitrepo.read_file(repo, a, "src/new.c")
    d = gitrepo.diff(repo, a, b, paths=["src/x.c"])
    assert d.startswith("diff --git a/src/x.c b/src/x.c") and "-x\n+y\n" in d and "new.c" not in d
    assert gitrepo.changed_files(repo, a, b) == ["src/new.c", "src/x.c"]
    c = commit(repo, "c", {"src/x.c": "z\n"})
    rd = gitrepo.range_diff(repo, a, b, a, c)
    assert "1:" in rd and "b" in rd


def test_worktree_is_removed_even_when_the_body_raises(repo: Path):
    c = commit(repo, "a", {"keep/a.c": "a\n", "skip/b.c": "b\n"})
    seen = {}
    with pytest.raises(RuntimeError):
        with gitrepo.worktree(repo, c) as wt:
            seen["path"] = wt
            assert (wt / "skip/b.c").read_text() == "b\n"
            raise RuntimeError("boom")
    assert not seen["path"].exists()
    assert str(seen["path"]) not in git(repo, "worktree", "list")
    with gitrepo.worktree(repo, c, paths=["keep"]) as wt:
        assert (wt / "keep/a.c").read_text() == "a\n"
        assert not (wt / "skip").exists()
        sparse = wt
    assert not sparse.exists() and git(repo, "worktree", "list").count("\n") == 1


def test_export_tree_writes_files_modes_and_subsets(repo: Path, tmp_path: Path):
    (repo / "run.sh").write_text("#!/bin/sh\n")
    (repo / "run.sh").chmod(0o755)
    os.symlink("run.sh", repo / "link")
    git(repo, "add", "run.sh", "link")
    c = commit(repo, "a", {"tools/testing/t.c": "t\n", "mm/m.c": "m\n"})
    out = tmp_path / "out"
    assert gitrepo.export_tree(repo, c, out) == 4
    assert os.access(out / "run.sh", os.X_OK) and os.readlink(out / "link") == "run.sh"
    sub = tmp_path / "sub"
    assert gitrepo.export_tree(repo, c, sub, paths=["tools/testing"]) == 1
    assert (sub / "tools/testing/t.c").read_text() == "t\n" and not (sub / "mm").exists()


# ---------------------------------------------------------------- parser

def test_parser_reads_quoted_names_and_reports_garbage_lines():
    quoted = ('diff --git "a/with space\\tand tab" "b/with space\\tand tab"\n'
              "new file mode 100644\nindex 0000000..e69de29\n")
    [fp] = parse_diff(quoted)
    assert fp.new_path == "with space\tand tab" and fp.is_new
    with pytest.raises(PatchError) as e:
        parse_diff("intro\ndiff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-a\n*b\n+c\n")
    assert e.value.line == 7


def test_diff_header_paths_handle_quoted_names_and_spaces():
    from untangle.gitrepo_patch import header_paths
    assert header_paths("diff --git a/mm/x.c b/mm/x.c") == ("mm/x.c", "mm/x.c")
    assert header_paths("diff --git a/with space.c b/with space.c") == ("with space.c", "with space.c")
    assert header_paths('diff --git "a/tab\\there.c" "b/tab\\there.c"') == ("tab\there.c", "tab\there.c")
    assert header_paths("--- a/x.c") == (None, None)
