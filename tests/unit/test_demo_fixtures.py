"""The demo story (fixtures/demo) holds what STORY.md claims.

Real git throughout: the tree is built, the committed mails are applied with
`git am -3`, and the selftest is compiled and run on this machine's kernel.
"""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fixtures.demo import build, content

DEMO = Path(build.__file__).resolve().parent
MAIL = DEMO / "mail"
SEP = "From mboxrd@z Thu Jan  1 00:00:00 1970\n"
NUMBERED = re.compile(r"^\[[^\]]*?(\d+)/(\d+)\]")


# --- helpers: read the committed threads the way a mail client would -------

def thread(key: str) -> list[tuple[email.message.EmailMessage, str]]:
    """Messages of mail/<key>.mbox as (parsed message, raw mboxrd chunk)."""
    chunks = (MAIL / f"{key}.mbox").read_text().split(SEP)[1:]
    return [(email.message_from_string(c, policy=email.policy.default), SEP + c) for c in chunks]


def patches(key: str) -> list[tuple[int, str]]:
    """(number, raw mbox text) of the thread's patches, in number order."""
    found = []
    for msg, raw in thread(key):
        match = NUMBERED.match(str(msg["Subject"]))
        if match and int(match.group(1)) > 0:
            found.append((int(match.group(1)), raw))
    return sorted(found)


def cover(key: str) -> email.message.EmailMessage:
    return thread(key)[0][0]


def base_commit(key: str) -> str:
    return re.search(r"^base-commit: ([0-9a-f]{40})$", cover(key).get_content(), re.M).group(1)


def guest_memfd_index(key: str, number: int) -> tuple[str, str]:
    """Pre- and post-image blob ids of virt/kvm/guest_memfd.c in patch `number`."""
    raw = dict(patches(key))[number]
    match = re.search(r"^diff --git a/virt/kvm/guest_memfd.c .*\nindex (\w+)\.\.(\w+)", raw, re.M)
    return match.group(1), match.group(2)


def clone_at(published: Path, dest: Path, ref: str) -> Path:
    subprocess.run(["git", "clone", "-q", str(published), str(dest)], check=True,
                   env=build.git_env(dest.parent))
    build.git(dest, "checkout", "-q", ref)
    return dest


def git_am(repo: Path, key: str, tmp: Path) -> None:
    """Apply a thread's patches with `git am -3`; raises RuntimeError if it fails."""
    mbox = tmp / f"{key}.mbox"
    mbox.write_text("".join(raw for _, raw in patches(key)))
    try:
        build.git(repo, "am", "-3", "--patch-format=mboxrd", str(mbox))
    except RuntimeError:
        build.git(repo, "am", "--abort")
        raise


def in_repo(repo: Path, sha: str) -> bool:
    return subprocess.run(["git", "cat-file", "-e", f"{sha}^{{commit}}"], cwd=repo,
                          env=build.git_env(repo), capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    repo = tmp_path_factory.mktemp("published") / "linux"
    return repo, build.build_tree(repo)


# --- the tree -------------------------------------------------------------

def test_tree_build_gives_the_same_shas_twice(tmp_path, published):
    again = build.build_tree(tmp_path / "again")
    assert again == published[1]
    assert set(again) == {"master", "next", "v6.14-rc3", "v6.14-rc7"}


def test_tree_history_is_identical_commit_by_commit(tmp_path, published):
    repo, _ = published
    build.build_tree(tmp_path / "again")
    log = ["log", "--all", "--format=%H %T %an %ad %cn %cd %s", "--date=raw"]
    assert build.git(tmp_path / "again", *log) == build.git(repo, *log)


def test_release_tags_are_annotated_and_point_at_linus_release_commits(published):
    repo, shas = published
    for tag in ("v6.14-rc3", "v6.14-rc7"):
        assert build.git(repo, "cat-file", "-t", tag).strip() == "tag"
        assert build.git(repo, "log", "-1", "--format=%an %s", shas[tag]).strip() == \
            f"Linus Torvalds Linux {tag[1:]}"


def test_user_config_cannot_change_the_shas(tmp_path, monkeypatch, published):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".gitconfig").write_text(
        "[user]\n\tname = Somebody Else\n[core]\n\tautocrlf = true\n")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Somebody Else")
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))  # as inside a git hook
    assert build.build_tree(tmp_path / "tree") == published[1]


def test_published_tree_holds_no_series_commit(published):
    repo, _ = published
    subjects = set(build.git(repo, "log", "--all", "--format=%s").splitlines())
    posted = {ch.subject for s in content.SERIES for ch in s.changes}
    assert subjects.isdisjoint(posted)
    assert len(subjects) == len(content.HISTORY)


# --- the mails ------------------------------------------------------------

def test_regenerated_mails_are_byte_identical_to_the_committed_ones(tmp_path):
    written = build.build_mails(tmp_path)
    assert sorted(p.name for p in MAIL.glob("*.mbox")) == sorted(p.name for p in written.values())
    for path in written.values():
        assert path.read_bytes() == (MAIL / path.name).read_bytes(), path.name


@pytest.mark.parametrize("key,prefix,count", [
    ("mapping-v6", "PATCH v6", 4), ("mapping-v7", "PATCH v7", 4), ("mapping-v8", "PATCH v8", 4),
    ("restricted-mapping-v2", "PATCH v2", 2), ("kvm-userfault-v2", "PATCH v2", 3),
    ("uffd-missing-rfc-v1", "RFC PATCH", 3), ("uffd-minor-v2", "PATCH v2", 3),
    ("uffd-minor-v3", "PATCH v3", 4), ("uffd-minor-fastpath-v1", "PATCH", 2),
    ("uffd-docs-v1", "PATCH", 2),
])
def test_patches_are_numbered_and_reply_to_their_cover(key, prefix, count):
    head = cover(key)
    assert str(head["Subject"]).startswith(f"[{prefix} 0/{count}] ")
    assert head["Message-ID"] == f"<{content.msgid(key)}>"
    numbered = patches(key)
    assert [n for n, _ in numbered] == list(range(1, count + 1))
    for n, raw in numbered:
        msg = email.message_from_string(raw.split("\n", 1)[1], policy=email.policy.default)
        assert str(msg["Subject"]).startswith(f"[{prefix} {n}/{count}] ")
        assert msg["In-Reply-To"] == head["Message-ID"]
        assert msg["Message-ID"] == f"<{content.msgid(key, n)}>"
        assert msg["List-Id"] == "<kvm.vger.kernel.org>"


def test_uffd_minor_v3_cover_links_mapping_v7_and_its_previous_revision():
    text = cover("uffd-minor-v3").get_content()
    assert f"[1] https://lore.kernel.org/kvm/{content.msgid('mapping-v7')}/T/" in text
    assert f"[4] https://lore.kernel.org/kvm/{content.msgid('uffd-minor-v2')}/T/" in text
    assert "Changes since v2 [4]:" in text


def test_uffd_minor_v3_carries_a_foreign_author_and_a_series_review():
    second = dict(patches("uffd-minor-v3"))[2]
    body = second.split("\n\n", 1)[1]
    assert body.startswith("From: James Houghton <jthoughton@google.com>\n")
    replies = [m for m, _ in thread("uffd-minor-v3") if str(m["Subject"]).startswith("Re:")]
    assert len(replies) == 3
    assert replies[0]["In-Reply-To"] == f"<{content.msgid('uffd-minor-v3')}>"
    assert "Reviewed-by: James Houghton <jthoughton@google.com>" in replies[0].get_content()


def test_liam_comments_on_two_uffd_minor_v3_patches_quoting_their_diffs_without_trailers():
    liam = [m for m, _ in thread("uffd-minor-v3") if "Liam.Howlett@oracle.com" in str(m["From"])]
    assert [m["In-Reply-To"] for m in liam] == [f"<{content.msgid('uffd-minor-v3', n)}>" for n in (2, 3)]
    for m in liam:
        text = m.get_content()
        assert "\n> +" in text and "-by:" not in text


def test_restricted_mapping_names_its_base_series_and_draws_a_lockdep_report():
    assert f"Based-on: <{content.msgid('mapping-v7')}>" in cover("restricted-mapping-v2").get_content()
    report = thread("restricted-mapping-v2")[-1][0]
    assert report["In-Reply-To"] == f"<{content.msgid('restricted-mapping-v2', 2)}>"
    assert "WARNING: possible circular locking dependency detected" in report.get_content()


def test_fastpath_depends_on_uffd_minor_v3_by_lore_link():
    text = cover("uffd-minor-fastpath-v1").get_content()
    assert f"Depends-on: https://lore.kernel.org/kvm/{content.msgid('uffd-minor-v3')}/" in text


# --- bases and blobs ------------------------------------------------------

@pytest.mark.parametrize("key,ref", [
    ("mapping-v6", "v6.14-rc3"), ("mapping-v7", "v6.14-rc7"), ("mapping-v8", "v6.14-rc7"),
    ("kvm-userfault-v2", "next"), ("uffd-docs-v1", "master"),
])
def test_public_base_commit_is_the_named_tree_commit(published, key, ref):
    assert base_commit(key) == published[1][ref]


@pytest.mark.parametrize("key", ["uffd-missing-rfc-v1", "restricted-mapping-v2", "uffd-minor-v2",
                                 "uffd-minor-v3", "uffd-minor-fastpath-v1"])
def test_private_base_commit_is_absent_from_the_published_tree(published, key):
    assert not in_repo(published[0], base_commit(key))


def test_uffd_minor_v2_and_v3_share_one_private_base():
    assert base_commit("uffd-minor-v2") == base_commit("uffd-minor-v3")


def test_uffd_minor_v3_starts_guest_memfd_from_the_blob_mapping_v7_produces(tmp_path, published):
    pre, _ = guest_memfd_index("uffd-minor-v3", 3)
    _, mapping_post = guest_memfd_index("mapping-v7", 3)
    assert pre == mapping_post
    repo = clone_at(published[0], tmp_path / "linux", "v6.14-rc7")
    git_am(repo, "mapping-v7", tmp_path)
    assert build.git(repo, "rev-parse", "HEAD:virt/kvm/guest_memfd.c").startswith(pre)


def test_mapping_v8_no_longer_produces_the_blob_uffd_minor_v3_starts_from():
    assert guest_memfd_index("mapping-v8", 3)[1] != guest_memfd_index("uffd-minor-v3", 3)[0]


# --- apply order ------------------------------------------------------------

@pytest.mark.parametrize("ref,chain", [
    ("next", ["kvm-userfault-v2"]),
    ("v6.14-rc3", ["mapping-v6", "uffd-missing-rfc-v1"]),
    ("v6.14-rc7", ["mapping-v7", "restricted-mapping-v2"]),
    ("v6.14-rc7", ["mapping-v7", "uffd-minor-v2"]),
    ("v6.14-rc7", ["mapping-v7", "uffd-minor-v3", "uffd-minor-fastpath-v1"]),
    ("v6.14-rc7", ["mapping-v8"]),
    ("master", ["uffd-docs-v1"]),
])
def test_chain_applies_in_dependency_order(tmp_path, published, ref, chain):
    repo = clone_at(published[0], tmp_path / "linux", ref)
    for key in chain:
        git_am(repo, key, tmp_path)
    applied = build.git(repo, "rev-list", "--count", f"{published[1][ref]}..HEAD")
    assert int(applied) == sum(len(patches(key)) for key in chain)


@pytest.mark.parametrize("chain", [
    ["uffd-minor-v3"],
    ["mapping-v7", "uffd-minor-fastpath-v1"],
    ["mapping-v7", "uffd-minor-v2", "uffd-minor-fastpath-v1"],
    ["restricted-mapping-v2"],
])
def test_series_does_not_apply_without_what_it_is_built_on(tmp_path, published, chain):
    repo = clone_at(published[0], tmp_path / "linux", "v6.14-rc7")
    for key in chain[:-1]:
        git_am(repo, key, tmp_path)
    with pytest.raises(RuntimeError, match="git am"):
        git_am(repo, chain[-1], tmp_path)


# --- the suite: real selftests on this kernel ---------------------------------

def run_selftest(repo: Path, out: Path) -> dict[str, str]:
    """Build tools/testing/selftests/mm and run uffd-faults: {test: TAP status line}."""
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("gcc and make are needed to build the selftests")
    out.mkdir()
    subprocess.run(["make", "-s", "-C", str(repo / "tools/testing/selftests/mm"), f"OUTPUT={out}"],
                   check=True, capture_output=True)
    proc = subprocess.run([str(out / "uffd-faults")], capture_output=True, text=True, timeout=60)
    assert proc.stdout.startswith("TAP version 13\n1..2\n"), proc.stdout
    results = {}
    for line in proc.stdout.splitlines():
        match = re.match(r"(not ok|ok) \d+ (\S+)(.*)", line)
        if match:
            results[match.group(2)] = match.group(1) + match.group(3)
    if any("# SKIP" in status for status in results.values()):
        pytest.skip(f"this kernel cannot run the userfaultfd tests: {results}")
    return results


def test_selftests_pass_on_mapping_v7_plus_uffd_minor_v3(tmp_path, published):
    repo = clone_at(published[0], tmp_path / "linux", "v6.14-rc7")
    for key in ("mapping-v7", "uffd-minor-v3"):
        git_am(repo, key, tmp_path)
    assert run_selftest(repo, tmp_path / "out") == {"missing-anon": "ok", "minor-shmem": "ok"}


def test_fastpath_breaks_minor_shmem_only(tmp_path, published):
    repo = clone_at(published[0], tmp_path / "linux", "v6.14-rc7")
    for key in ("mapping-v7", "uffd-minor-v3", "uffd-minor-fastpath-v1"):
        git_am(repo, key, tmp_path)
    assert run_selftest(repo, tmp_path / "out") == {"missing-anon": "ok",
                                                    "minor-shmem": "not ok"}


# --- STORY.md ---------------------------------------------------------------

def test_story_names_the_shas_and_msgids_the_build_produces(published):
    story = (DEMO / "STORY.md").read_text()
    for ref in ("v6.14-rc3", "v6.14-rc7", "master", "next"):
        assert published[1][ref] in story, ref
    for key in ("uffd-minor-v3", "uffd-minor-fastpath-v1", "restricted-mapping-v2",
                "uffd-missing-rfc-v1"):
        assert base_commit(key) in story, key
    for key in content.STEMS:
        assert content.msgid(key) in story, key


def test_the_demo_trees_first_files_are_real_files_under_fixtures_demo_tree():
    from fixtures.demo import content
    created = {e.path: e.new for tc in content.HISTORY for e in tc.change.edits if e.old is None}
    on_disk = {str(p.relative_to(content.TREE_DIR)) for p in content.TREE_DIR.rglob("*") if p.is_file()}
    assert on_disk and on_disk <= set(created)  # every file there is one the history creates
    for path in on_disk:
        assert created[path] == (content.TREE_DIR / path).read_text(encoding="utf-8")
    assert "mm/userfaultfd.c" in on_disk and "virt/kvm/guest_memfd.c" in on_disk
