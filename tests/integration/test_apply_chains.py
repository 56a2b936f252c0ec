"""Applying chains of series onto a real git tree: the demo story, conflicts,
corrupt patches, missing bases, concurrency and the cache.

Real git throughout: the demo tree is built by fixtures/demo/build.py, the
expected results come from `git am -3` run on the same mails.
"""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from fixtures.demo.build import git_env
from reviewapp.models import ApplyRun, Revision
from reviewapp.services import apply as service, trees
from reviewapp.services.ingest import ingest
from untangle import gitrepo
from untangle.mail import parse
from tests.support.demo import DEMO_MAIL, DOCS, FASTPATH, MAPPING_V7, MAPPING_V8, REPO, RESTRICTED, UFFD_V3
from untangle.mbox import messages_from_path

RC7 = "db7aff2c120addec29ffe21f26c7b11e317e8e35"

pytestmark = pytest.mark.django_db


# ------------------------------------------------------------------ helpers (also used by the web tests)

def run_git(repo: Path, *args: str, stdin: bytes | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, input=stdin, capture_output=True,
                          env=git_env(repo))
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


def am_tree(source: Path, work: Path, base: str, mbox_keys: list[str]) -> str:
    """The tree sha `git am -3` produces for these threads' patches (covers skipped)."""
    run_git(work.parent, "clone", "-q", str(source), str(work))
    run_git(work, "checkout", "-q", "--detach", base)
    for key in mbox_keys:
        raws = [r for r in messages_from_path(DEMO_MAIL / f"{key}.mbox") if parse(r).kind == "patch"]
        for raw in sorted(raws, key=lambda r: parse(r).number):
            run_git(work, "am", "-3", "-q", stdin=raw)
    return run_git(work, "rev-parse", "HEAD^{tree}").strip()


def post_series(source: Path, work: Path, stem: str, base: str, changes: list[tuple[str, dict]],
                title: str, depends_on: str | None = None, base_commit: str | None = None,
                date: str = "Mon, 5 May 2025 10:00:00 +0000") -> list[bytes]:
    """Mails of a new series made with real git: commit `changes` on `base`, format-patch them.

    changes: [(subject, {path: new file content})]. The cover carries Depends-on
    and base-commit (base_commit overrides the real one, e.g. a private commit).
    """
    if not work.exists():
        run_git(source.parent, "clone", "-q", str(source), str(work))
    run_git(work, "checkout", "-q", "-B", stem, base)
    for subject, files in changes:
        for path, text in files.items():
            (work / path).write_text(text)
        run_git(work, "add", "-A")
        run_git(work, "commit", "-q", "-m", f"{subject}\n\nWhy it matters.\n\nSigned-off-by: Ann Dev <ann@example.org>")
    base_sha = run_git(work, "rev-parse", base + "^{commit}").strip()
    out = run_git(work, "format-patch", "--stdout", "--cover-letter", "--numbered",
                  f"--base={base_sha}", f"{base_sha}..HEAD")
    parts = re.split(r"^From [0-9a-f]{40} Mon Sep 17 00:00:00 2001\n", out, flags=re.M)[1:]
    mails = []
    for n, part in enumerate(parts):
        head, body = part.split("\n\n", 1)
        head = re.sub(r"^Date: .*$", f"Date: {date}", head, flags=re.M)
        head += f"\nMessage-ID: <{stem}-{n}@example.org>"
        if n:
            head += f"\nIn-Reply-To: <{stem}-0@example.org>\nReferences: <{stem}-0@example.org>"
        else:
            head = head.replace("*** SUBJECT HERE ***", title)
            blurb = f"Depends-on: <{depends_on}>\n\nThis builds on the series above." if depends_on \
                else "A series of its own."
            body = body.replace("*** BLURB HERE ***", blurb)
            if base_commit:
                body = re.sub(r"^base-commit: [0-9a-f]+$", f"base-commit: {base_commit}", body, flags=re.M)
        mails.append((head + "\n\n" + body).encode())
    return mails


def root(msgid: str) -> Revision:
    return Revision.objects.get(msgid=msgid)


# ------------------------------------------------------------------ the demo chain

def test_fastpath_applies_after_mapping_v7_and_uffd_minor_v3_on_rc7(demo, demo_source, tmp_path):
    run = service.apply(root(FASTPATH), demo)
    assert run.status == ApplyRun.APPLIED, run.error
    assert run.chain == [MAPPING_V7, UFFD_V3, FASTPATH]
    # fastpath and uffd minor v3 name private bases; mapping v7's is v6.14-rc7.
    assert (run.base, run.base_rule) == (RC7, "dependency")
    rejected = [a for a in run.base_attempts if a["reason"]]
    assert [a["revision"] for a in rejected] == [FASTPATH, UFFD_V3]
    assert all("not in tree" in a["reason"] for a in rejected)
    assert len(run.applied) == 4 + 4 + 2 and run.progress == run.total == 10
    expected = am_tree(demo_source, tmp_path / "am", RC7,
                       ["mapping-v7", "uffd-minor-v3", "uffd-minor-fastpath-v1"])
    assert run.tree_sha == expected
    mirror = trees.mirror_of(demo)
    assert gitrepo.resolve(mirror, f"refs/reviewapp/chains/{run.id}") == run.head
    info = gitrepo.commit_info(mirror, run.head)
    assert info["author_name"] == "Lena Brandt"
    assert f"Link: https://patch.msgid.link/{run.applied[-1]['msgid']}" in info["message"]


def test_given_base_is_used_as_is_and_recorded_as_given(demo):
    run = service.apply(root(FASTPATH), demo, base="v6.14-rc7")
    assert (run.status, run.base_rule, run.base) == (ApplyRun.APPLIED, "given", RC7)


def test_newest_replaces_mapping_v7_by_v8(demo):
    run = service.apply(root(FASTPATH), demo, newest=True)
    assert run.chain[0] == MAPPING_V8 and run.chain[-1] == FASTPATH
    assert run.status == ApplyRun.APPLIED, run.error


def test_docs_series_applies_alone_on_its_base_commit(demo):
    run = service.apply(root(DOCS), demo)
    assert (run.status, run.base_rule, run.chain) == (ApplyRun.APPLIED, "base-commit", [DOCS])


# ------------------------------------------------------------------ conflicts and failures

def _readme(source: Path) -> str:
    return (source / "README").read_text()


def test_conflict_names_patch_revision_hunk_and_the_earlier_patch_that_touched_the_lines(demo, demo_source, tmp_path):
    text = _readme(demo_source)
    first_line = text.splitlines()[0]
    a = post_series(demo_source, tmp_path / "w", "ser-a", "master",
                    [("README: retitle", {"README": text.replace(first_line, "Retitled by A", 1)})],
                    title="README: retitle")
    b = post_series(demo_source, tmp_path / "w", "ser-b", "master",
                    [("README: note", {"Makefile": (demo_source / "Makefile").read_text() + "# note\n"}),
                     ("README: rename differently", {"README": text.replace(first_line, "Renamed by B", 1)})],
                    title="README: other title", depends_on="ser-a-0@example.org")
    ingest(a + b)
    run = service.apply(root("ser-b-0@example.org"), demo)
    assert run.status == ApplyRun.CONFLICT
    assert run.chain == ["ser-a-0@example.org", "ser-b-0@example.org"]
    # What applied stays: A's patch and B's first patch, kept at the partial ref.
    assert [x["msgid"] for x in run.applied] == ["ser-a-1@example.org", "ser-b-1@example.org"]
    assert run.ref == f"refs/reviewapp/chains/{run.id}-partial"
    assert gitrepo.resolve(trees.mirror_of(demo), run.ref) == run.head
    f = run.failed
    assert f["msgid"] == "ser-b-2@example.org" and f["revision"] == "ser-b-0@example.org"
    assert (f["number"], f["position"]) == (2, 3)
    assert f["files"] == ["README"] and f["hunks"][0]["file"] == "README"
    assert "README" in f["error"] and "hunk" in f["error"]
    touched = [t for t in f["last_touched"] if t["lines"].startswith("1-")]
    assert touched and touched[0]["by"] == "ser-a-1@example.org"
    assert touched[0]["revision"] == "ser-a-0@example.org"
    out = service.run_dict(run)
    assert out["failed"] == {"msgid": "ser-b-2@example.org", "error": f["error"], "files": ["README"]}


def test_corrupt_patch_fails_naming_its_line_and_keeps_what_applied(demo, demo_source, tmp_path):
    text = _readme(demo_source)
    mails = post_series(demo_source, tmp_path / "w", "ser-c", "master",
                        [("README: one", {"README": text + "one\n"}),
                         ("README: two", {"README": text + "one\ntwo\n"})], title="two patches")
    # Damage patch 2: a hunk line without its leading space/+/- marker.
    mails[2] = mails[2].replace(b"\n one\n", b"\nbroken line\n", 1)
    ingest(mails)
    run = service.apply(root("ser-c-0@example.org"), demo)
    assert run.status == ApplyRun.FAILED
    assert [x["msgid"] for x in run.applied] == ["ser-c-1@example.org"]
    assert run.failed["msgid"] == "ser-c-2@example.org"
    assert re.search(r"line \d+", run.failed["error"]) and run.failed["line"]
    assert run.head and run.ref.endswith("-partial")


def test_base_commit_absent_from_tree_and_no_dependency_falls_back_to_a_recorded_guess(demo, demo_source, tmp_path):
    mails = post_series(demo_source, tmp_path / "w", "ser-g", "v6.14-rc7",
                        [("mm: note", {"mm/shmem.c": (demo_source / "mm/shmem.c").read_text() + "/* note */\n"})],
                        title="private base", base_commit="1234567890abcdef1234567890abcdef12345678")
    ingest(mails)
    run = service.apply(root("ser-g-0@example.org"), demo)
    assert run.status == ApplyRun.APPLIED, run.error
    assert run.base_rule == "guessed"
    # mm/shmem.c is the same at master and rc7; the newest matching commit wins.
    master = gitrepo.resolve(trees.mirror_of(demo), "master")
    assert run.base == master
    first = run.base_attempts[0]
    assert first["rule"] == "base-commit" and "not in tree" in first["reason"]
    assert run.base_attempts[-1]["reason"] is None and run.base_attempts[-1]["rev"] == master


def test_guess_records_rejected_commits_when_the_preimage_is_older(demo, demo_source, tmp_path):
    # A patch made on rc3 to a file rc7 changed: master and rc7 are rejected with the blob mismatch.
    mails = post_series(demo_source, tmp_path / "w", "ser-o", "v6.14-rc3",
                        [("kvm: note", {"virt/kvm/guest_memfd.c":
                                        run_git(demo_source, "show", "v6.14-rc3:virt/kvm/guest_memfd.c") + "/* x */\n"})],
                        title="old base", base_commit="abcdefabcdefabcdefabcdefabcdefabcdefabcd")
    ingest(mails)
    run = service.apply(root("ser-o-0@example.org"), demo)
    assert run.base_rule == "guessed" and run.status == ApplyRun.APPLIED
    rc3 = gitrepo.resolve(trees.mirror_of(demo), "v6.14-rc3")
    assert run.base == rc3
    rejected = [a for a in run.base_attempts if a["rule"] == "guessed" and a["reason"]]
    assert any("virt/kvm/guest_memfd.c: blob" in a["reason"] for a in rejected)


def test_no_base_commit_and_no_blobs_uses_branch_head_flagged(demo, demo_source, tmp_path):
    mails = post_series(demo_source, tmp_path / "w", "ser-h", "master",
                        [("docs: new file", {"NEWFILE": "hello\n"})], title="new file")
    mails = [re.sub(rb"\nbase-commit: [0-9a-f]+\n", b"\n", m) for m in mails]
    ingest(mails)
    run = service.apply(root("ser-h-0@example.org"), demo)
    # A new file's pre-image is "does not exist": every commit matches, so the guess is the head.
    assert run.status == ApplyRun.APPLIED
    assert run.base_rule in ("guessed", "branch-head")
    assert run.base == gitrepo.resolve(trees.mirror_of(demo), "master")


def test_given_base_unknown_fails_clearly(demo):
    run = service.apply(root(DOCS), demo, base="no-such-ref")
    assert run.status == ApplyRun.FAILED and run.base_rule == "given"
    assert "no-such-ref" in run.failed["error"] and run.head == ""


def test_missing_dependency_fails_before_touching_git(data_dir, demo_source):
    tree = trees.add_tree("demo", str(demo_source))
    ingest(messages_from_path(DEMO_MAIL / "uffd-minor-fastpath-v1.mbox"))
    run = service.apply(root(FASTPATH), tree)
    assert run.status == ApplyRun.FAILED and run.applied == []
    assert UFFD_V3 in run.error


# ------------------------------------------------------------------ cache

def test_same_base_and_patches_reuse_the_result_fast(demo):
    first = service.apply(root(FASTPATH), demo)
    started = time.perf_counter()
    again = service.apply(root(FASTPATH), demo)
    elapsed = time.perf_counter() - started
    assert again.cached and not first.cached
    assert (again.head, again.tree_sha, again.ref, again.applied) == (first.head, first.tree_sha, first.ref, first.applied)
    assert again.cache_key == first.cache_key
    assert elapsed < 0.05, f"cached re-apply took {elapsed * 1000:.1f} ms"


def test_a_fetch_that_changes_the_tree_recomputes_the_base(demo, demo_source):
    first = service.apply(root(DOCS), demo)
    trees.fetch_tree(demo.id)
    again = service.apply(root(DOCS), demo)
    # Same base and patches after the fetch: still a cache hit, found through the key.
    assert again.cached and again.base == first.base


# ------------------------------------------------------------------ CLI contract

def _cli(*args) -> tuple[int, dict | None, str]:
    from io import StringIO
    out, err = StringIO(), StringIO()
    try:
        call_command("apply", *args, stdout=out, stderr=err)
        code = 0
    except CommandError as exc:
        code, err = exc.returncode, StringIO(err.getvalue() + str(exc))
    text = out.getvalue()
    return code, (json.loads(text) if text.strip().startswith("{") else None), err.getvalue()


def test_cli_json_is_exactly_the_contract(demo):
    code, data, _ = _cli(f"https://lore.kernel.org/kvm/{FASTPATH}/", "--tree", "demo", "--json")
    assert code == 0
    assert set(data) == {"status", "base", "base_rule", "head", "tree", "ref", "applied", "failed", "cached"}
    assert data["status"] == "applied" and data["base_rule"] == "dependency" and data["base"] == RC7
    assert data["ref"].startswith("refs/reviewapp/chains/") and data["failed"] is None
    assert all(set(a) == {"msgid", "commit"} for a in data["applied"]) and len(data["applied"]) == 10
    assert data["cached"] is False
    code, again, _ = _cli(FASTPATH, "--tree", "demo", "--json")
    assert code == 0 and again["cached"] is True and again["head"] == data["head"]


def test_cli_conflict_prints_json_and_exits_non_zero(demo):
    # `next` (6.13-rc5) lacks the selftest changes uffd minor v3 4/4 builds on.
    code, data, err = _cli(FASTPATH, "--tree", "demo", "--base", "next", "--json")
    assert code == 1 and data["status"] == "conflict" and "conflict" in err
    assert data["failed"]["msgid"] == "20250404132740.18342-5-kalyazin@amazon.com"
    assert data["failed"]["files"] == ["tools/testing/selftests/mm/uffd-faults.c"]
    assert len(data["applied"]) == 7 and data["ref"].endswith("-partial")
    assert data["head"] == data["applied"][-1]["commit"]


def test_cli_unknown_tree_is_an_error(demo):
    code, data, err = _cli(DOCS, "--tree", "nope", "--json")
    assert code == 1 and data is None and "no tree named 'nope'" in err


# ------------------------------------------------------------------ concurrency

def _database_url() -> str:
    from django.db import connection
    from tests.conftest import _database_url as url
    return url(connection.settings_dict)


@pytest.mark.django_db(transaction=True)
def test_two_chains_applied_at_once_in_two_processes_are_both_right(demo, demo_source, data_dir, tmp_path):
    env = dict(os.environ, DATABASE_URL=_database_url(), REVIEWAPP_DATA_DIR=str(data_dir))
    procs = [subprocess.Popen([sys.executable, "manage.py", "apply", m, "--tree", "demo", "--json"],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for m in (FASTPATH, RESTRICTED)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        results.append(json.loads(out))
    fast, restricted = results
    assert fast["tree"] == am_tree(demo_source, tmp_path / "am1", RC7,
                                   ["mapping-v7", "uffd-minor-v3", "uffd-minor-fastpath-v1"])
    assert restricted["tree"] == am_tree(demo_source, tmp_path / "am2", RC7,
                                         ["mapping-v7", "restricted-mapping-v2"])
    mirror = trees.mirror_of(trees.get_tree("demo"))
    assert gitrepo.resolve(mirror, fast["ref"]) == fast["head"]
    assert gitrepo.resolve(mirror, restricted["ref"]) == restricted["head"]
    assert fast["ref"] != restricted["ref"]


def test_a_newer_dependency_arriving_changes_the_newest_chain_not_the_cached_one(data_dir, demo_source):
    tree = trees.add_tree("demo", str(demo_source))
    for key in ("mapping-v7", "uffd-minor-v3", "uffd-minor-fastpath-v1"):
        ingest(messages_from_path(DEMO_MAIL / f"{key}.mbox"))
    before = service.apply(root(FASTPATH), tree, newest=True)
    assert before.chain[0] == MAPPING_V7 and before.status == ApplyRun.APPLIED
    ingest(messages_from_path(DEMO_MAIL / "mapping-v8.mbox"))
    after = service.apply(root(FASTPATH), tree, newest=True)
    assert after.chain[0] == MAPPING_V8 and not after.cached
    assert after.tree_sha != before.tree_sha and after.status == ApplyRun.APPLIED


def test_cli_text_output_lists_the_commits_and_the_ref(demo):
    from io import StringIO
    out, err = StringIO(), StringIO()
    call_command("apply", DOCS, "--tree", "demo", stdout=out, stderr=err)
    text = out.getvalue()
    assert text.startswith("applied onto fa9042666118") and "(base-commit)" in text
    assert "refs/reviewapp/chains/" in text and "applying 2/2" in err.getvalue()
