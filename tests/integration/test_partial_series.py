"""Series that reached a list only in part: the patches Cc'd to it, answering a cover that
went to other lists. On real mail: uffd minor v3 as linux-kselftest would get it (only its
guest_memfd and selftest patches), completed from a real public-inbox; and partial
postings of the kselftest archive itself."""
import pytest

from reviewapp.models import ApplyRun, FetchRequest, Message, Revision
from reviewapp.services import fetch, trees
from reviewapp.services.apply import apply
from reviewapp.services.graph import graph_for
from reviewapp.services.ingest import ingest
from tests.integration.test_kselftest_archive import _threads
from tests.support.public_inbox import serve_inbox
from tests.support.shared import LORE, require
from untangle.mbox import messages_from_path

pytestmark = pytest.mark.django_db

UFFD_V3 = LORE / "kvm-gmem-uffd-minor-v3.mbox"
COVER = "20250404154352.23078-1-kalyazin@amazon.com"
P4, P6 = "20250404154352.23078-5-kalyazin@amazon.com", "20250404154352.23078-7-kalyazin@amazon.com"


def _mails(path) -> dict[str, bytes]:
    from email.parser import BytesHeaderParser
    return {BytesHeaderParser().parsebytes(m)["Message-ID"].strip("<> \n"): m for m in messages_from_path(path)}


def _rev(msgid: str) -> Revision:
    return Message.objects.get(msgid=msgid).revision


def _maintainer(client):
    from django.contrib.auth.models import Group, User

    from reviewapp.permissions import MAINTAINERS
    boss = User.objects.create_user("max", password="pw")
    boss.groups.add(Group.objects.get_or_create(name=MAINTAINERS)[0])
    client.force_login(boss)


def test_two_patches_cc_d_to_a_list_are_one_partial_revision_that_says_so_everywhere(
        data_dir, demo_source, client):
    mails = _mails(require(UFFD_V3))
    ingest([mails[P6], mails[P4]], "linux-kselftest")
    rev = _rev(P4)
    assert _rev(P6).id == rev.id
    assert rev.partial_root == COVER
    assert (rev.msgid, rev.received, rev.expected, rev.missing, rev.complete) == (P4, 2, 6, [1, 2, 3, 5], False)
    html = client.get(f"/series/{P4}/").content.decode()
    assert "2 of 6 patches on this list." in html and f"&lt;{COVER}&gt;" in html
    assert 'id="fetch-whole-thread"' not in html  # anonymous: no fetch button
    problems = [p["detail"] for p in graph_for(rev)["problems"]]
    assert any("reached this list only in part" in p and COVER in p for p in problems), problems
    run = apply(rev, trees.add_tree("demo", str(demo_source)))
    assert run.status == ApplyRun.FAILED
    assert "only 2 of its 6 patches reached this list" in run.error and COVER in run.error


def test_a_maintainer_fetches_the_whole_thread_and_the_partial_revision_becomes_the_series(
        data_dir, client, settings, tmp_path):
    mails = _mails(require(UFFD_V3))
    ingest([mails[P4]], "linux-kselftest")
    ingest([mails[P6]], "linux-kselftest")  # a later sync: joins the same partial revision
    partial = _rev(P4)
    assert _rev(P6).id == partial.id and partial.received == 2
    _maintainer(client)
    page = client.get(f"/series/{P4}/").content.decode()
    assert 'id="fetch-whole-thread"' in page and f'value="{COVER}"' in page
    posted = client.post("/search/fetch", {"q": COVER})
    req = FetchRequest.objects.get(msgid=COVER)
    assert posted["Location"] == f"/fetch/{req.id}/"
    with serve_inbox([UFFD_V3], tmp_path) as inbox:
        settings.LORE_URL = inbox.url
        assert fetch.run(req.id).state == FetchRequest.DONE  # what the worker's task does
    whole = _rev(COVER)
    assert {_rev(m).id for m in (P4, P6)} == {whole.id}
    assert (whole.msgid, whole.received, whole.complete, whole.partial_root) == (COVER, 6, True, None)
    assert whole.mailing_list_id is not None
    assert not Revision.objects.filter(id=partial.id).exists()
    assert client.get(f"/fetch/{req.id}/")["Location"] == f"/series/{COVER}/"


# linux-kselftest got these postings in part (read by hand in the archive):
# Mathieu Desnoyers' rseq series, 2019-04-29: 8 of 12 patches, cover not on the list.
_RSEQ_ROOT = "20190429152803.7719-1-mathieu.desnoyers@efficios.com"
# Lorenz Bauer's "bpf: sockmap/tls" v1 (2020-01-23) and v2 (2020-01-24): each 4 patches without
# its cover; v2's cover answered v1's, so v2's patches carry v1's cover in References too.
_LMB_V1 = "20200123165934.9584-1-lmb@cloudflare.com"
_LMB_V2 = "20200124112754.19664-1-lmb@cloudflare.com"


def test_real_partial_postings_of_the_archive_group_by_cover_version_and_sender():
    ingest(_threads(_RSEQ_ROOT, _LMB_V1, _LMB_V2), "linux-kselftest", workers=0)
    rseq = Revision.objects.get(anchor__startswith=_RSEQ_ROOT + "#")
    assert (rseq.partial_root, rseq.received, rseq.expected) == (_RSEQ_ROOT, 8, 12)
    assert rseq.missing == [4, 7, 10, 11]
    v1 = Revision.objects.get(messages__msgid="20200123165934.9584-2-lmb@cloudflare.com")
    v2 = Revision.objects.get(messages__msgid="20200124112754.19664-2-lmb@cloudflare.com")
    assert v1.id != v2.id
    assert (v1.partial_root, v1.version, v1.received) == (_LMB_V1, 1, 4)
    assert (v2.partial_root, v2.version, v2.received) == (_LMB_V2, 2, 4)
    assert v1.series_id == v2.series_id and v2.previous_id == v1.id
