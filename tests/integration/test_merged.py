"""A series whose patches a tree's default branch already carries is merged, not open."""
import subprocess

import pytest

from fixtures.demo.build import build_tree, git_env
from reviewapp.models import Revision
from reviewapp.services import digests, trees
from tests.support.demo import DEMO_MAIL, DOCS, UFFD_V3, ingest_demo_mails
from untangle import gitrepo

pytestmark = pytest.mark.django_db


@pytest.fixture
def upstream_with_docs_merged(tmp_path):
    """The demo tree whose maintainer has taken the docs series with git am."""
    repo = tmp_path / "linux"
    build_tree(repo)
    subprocess.run(["git", "am", "-q", "--empty=drop", str(DEMO_MAIL / "uffd-docs-v1.mbox")], cwd=repo,
                   env=git_env(repo, committer_date="2025-05-02T10:00:00+00:00"),  # taken after posting
                   check=True, capture_output=True)
    return repo


def test_patch_ids_since_match_git_patch_id(upstream_with_docs_merged):
    repo = upstream_with_docs_merged
    log = subprocess.run(["git", "log", "--no-merges", "-p", "master"], cwd=repo,
                         capture_output=True, check=True).stdout
    expected = {line.split()[0] for line in subprocess.run(
        ["git", "patch-id", "--stable"], input=log, capture_output=True, check=True).stdout.decode().splitlines()}
    assert gitrepo.patch_ids_since(repo, "master") == expected


def test_merged_series_leaves_the_open_set(data_dir, upstream_with_docs_merged):
    ingest_demo_mails()
    everything = Revision.objects.all()
    before = {r.msgid for r in digests.open_revisions(everything)}
    assert DOCS in before  # no tree carries it yet
    trees.add_tree("upstream", str(upstream_with_docs_merged))
    after = {r.msgid for r in digests.open_revisions(everything)}
    assert DOCS not in after and UFFD_V3 in after
    assert before - after == {DOCS}
