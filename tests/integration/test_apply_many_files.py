"""One mail changing 5,000 files: refused at ingest by default with the reason, applied
when REVIEWAPP_MAX_PATCH_FILES allows it, and the git layer's memory stays small.

(Was: ~40 s and 7.4 GB for a page view or an apply; the page is paginated, the base
guess walked every path of every commit; now subtrees a commit did not change are
not looked at again.)
"""
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from django.db import connection
from django.test.utils import CaptureQueriesContext

from reviewapp.models import ApplyRun, QuarantinedMail, Revision
from reviewapp.services import apply as service, trees
from reviewapp.services.ingest import ingest, limits_from_settings
from tests.support import many_files as mf
from untangle import gitrepo, gitrepo_base, gitrepo_repo

N = 5000
ROOT = Path(__file__).resolve().parents[2]


def _rss_mb() -> float:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@pytest.fixture
def source(tmp_path):
    return mf.build_repo(tmp_path / "src", N)


@pytest.mark.django_db
def test_a_5000_file_patch_is_quarantined_at_the_default_file_limit_with_the_reason(source):
    result = ingest([mf.mail(N, mf.blob_id(source))])
    assert result.quarantined == 1 and result.stored == 0
    q = QuarantinedMail.objects.get()
    assert q.msgid == "many-files-1@example.org"
    assert f"changes {N} files, over the limit of 2000" in q.reason


@pytest.mark.django_db
def test_a_5000_file_patch_applies_as_one_commit_when_the_limit_allows_it(source, data_dir):
    limits = dataclasses.replace(limits_from_settings(), max_files=N + 1)
    assert ingest([mf.mail(N, mf.blob_id(source))], limits=limits).stored == 1
    tree = trees.add_tree("many", str(source))
    rss_before = _rss_mb()
    with CaptureQueriesContext(connection) as queries:
        run = service.apply(Revision.objects.get(msgid="many-files-1@example.org"), tree)
    # Was 7.4 GB: every PatchFile row of the blob-edge query carried its patch's diff and mail.
    assert _rss_mb() - rss_before < 1024
    per_file = [q["sql"] for q in queries if 'FROM "reviewapp_patchfile"' in q["sql"]]
    assert per_file and not any('"reviewapp_patch"."diff"' in q for q in per_file)
    assert run.status == ApplyRun.APPLIED, run.error
    repo = trees.mirror_of(tree)
    changed = gitrepo.changed_files(repo, run.base, run.head)
    assert len(changed) == N
    assert gitrepo.read_file(repo, run.head, "d7/f3.c").startswith(b"line 0\nLINE 1\nline 2\n")


def test_guessing_a_base_over_1000_commits_and_applying_5000_files_stays_under_150_mb():
    out = subprocess.run([sys.executable, "-m", "tests.support.many_files", str(N), "1000"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    got = json.loads(out)
    assert got["commits_walked"] == 1001 and got["guess_found"] is None  # the whole walk was done
    assert got["status"] == "applied"
    assert got["peak_rss_mb"] < 150, got


def test_the_base_guess_looks_again_only_into_subtrees_a_commit_changed(tmp_path):
    repo = mf.build_repo(tmp_path / "r", 1000, later_commits=300)
    r = gitrepo_repo._open(repo)
    want = [(p, "1234567") for p in mf.paths(1000)]
    matcher = gitrepo_base._BlobMatcher(r, want)
    commit = r.revparse_single("master")
    for _ in range(301):
        matched, reason = matcher.match(commit.tree)
        assert matched == 0 and reason == "d0/f0.c: blob " + reason.split("blob ")[1]
        commit = commit.parents[0] if commit.parents else commit
    # Per commit only the root and d0 are new; the 49 other directories are read once.
    assert len(matcher.memo) <= 301 * 2 + 50
