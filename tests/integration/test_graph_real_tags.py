"""Formal tags as real mail of the kselftest archive writes them: b4's prerequisite-patch-id
(2020-2021, kunit series built on fixes not yet merged), each naming a patch of another
posting that the graph finds through the stored patch-ids, alone or in a batch; and a
"based-on:" naming a branch of another tree."""
import re

import pytest

from reviewapp.models import GraphSnapshot, Revision
from reviewapp.services.graph import graph_for, latest_snapshot, recompute_after_import
from reviewapp.services.ingest import ingest
from tests.support.shared import KSELFTEST_ARCHIVE, require
from untangle.mbox import messages_from_path

pytestmark = pytest.mark.django_db

# (series naming a prerequisite patch-id, the posting holding that patch)
CASES = {"20210205221808.1966010-1-dlatypov@google.com": "20210205221409.1962881-1-dlatypov@google.com",
         "20200618140615.135606-1-vitor@massaru.org": "20200618123912.64762-1-vitor@massaru.org"}
# An earlier posting of the same patch (same patch-id): the newer one is named.
ALSO = ["20210129022555.2411999-1-dlatypov@google.com"]
_STEMS = re.compile("|".join(re.escape(m.split("-")[0]) for m in [*CASES, *CASES.values(), *ALSO]).encode())


@pytest.fixture(scope="module")
def threads():
    head_of = (lambda raw: raw.partition(b"\n\n")[0])
    return [raw for raw in messages_from_path(require(KSELFTEST_ARCHIVE)) if _STEMS.search(head_of(raw))]


def test_real_prerequisite_patch_ids_name_the_newest_posting_of_that_patch_alone_and_in_a_batch(threads):
    ingest(threads)
    revs = list(Revision.objects.order_by("id"))
    alone = {r.msgid: graph_for(r) for r in revs}
    for source, target in CASES.items():
        named = [e for e in alone[source]["edges"] if e["target_type"] == "patch-id"]
        assert named and {e["to"] for e in named} == {target}, source
        assert all(e["how"] == "tag" and e["evidence"].startswith("prerequisite-patch-id:") for e in named)
        assert alone[source]["order"][-2:] == [target, source]
    GraphSnapshot.objects.all().delete()
    recompute_after_import([r.id for r in revs])
    for r in revs:
        got = latest_snapshot(r).data
        assert got == {k: v for k, v in alone[r.msgid].items() if k not in ("snapshot", "fetched")}, r.msgid


# Joe Lawrence, 2020-06-10, "[PATCH 0/3] selftests/livepatch: small script cleanups":
# "based-on: livepatching.git, for-5.9/selftests-cleanup".
_LIVEPATCH = "20200610172101.21910-1-joe.lawrence@redhat.com"


def test_a_real_based_on_naming_a_branch_of_another_tree_is_the_graphs_base():
    from tests.integration.test_kselftest_archive import _threads
    ingest(_threads(_LIVEPATCH), workers=0)
    data = graph_for(Revision.objects.get(msgid=_LIVEPATCH))
    [base] = [e for e in data["edges"] if e["kind"] == "base"]
    assert (base["to"], base["how"], base["extra"]) == (
        "for-5.9/selftests-cleanup", "tag", {"ref": "branch", "repo": "livepatching.git"})
    assert base["evidence"] == "based-on: livepatching.git, for-5.9/selftests-cleanup"
