"""The review panel on the series and graph pages, and the reviewer queues (/review/), on
the demo story: uffd minor v3 carries Liam R. Howlett's review comments; the chain it needs
(mapping v7) shows its own state; restricted mapping v2 has the bot's lockdep report open."""
import pytest

from reviewapp.models import Revision, ReviewState
from reviewapp.services import ingest, review
from tests.support.demo import MAPPING_V8, UFFD_V3

pytestmark = pytest.mark.django_db
MAPPING_V7 = "20250318142233.2716254-1-tabba@google.com"
RESTRICTED = "20250319101548.2791123-1-tabba@google.com"
LIAM = "liam.howlett@oracle.com"


def test_uffd_minor_v3_shows_liams_comments_per_patch_and_the_chain_it_needs(demo_reviewed, client):
    html = client.get(f"/series/{UFFD_V3}/").content.decode()
    panel = html.split('id="review-panel"', 1)[1].split("</section>", 1)[0]
    assert "Review comments from " in panel and LIAM in panel
    assert f'href="/series/{MAPPING_V7}/"' in panel  # the needed series' own row
    v7 = ReviewState.objects.get(revision__msgid=MAPPING_V7)
    assert f"{v7.reviewed} of {v7.patches} patches" in panel
    patches = html.split('id="patches"', 1)[1]
    assert patches.count("comments: Liam R. Howlett (1 mail") == 2
    data = ReviewState.objects.get(revision__msgid=UFFD_V3).data
    by_number = {p["number"]: p for p in data["patches"]}
    assert [c["email"] for c in by_number[2]["comments"]] == [LIAM]
    assert [c["email"] for c in by_number[3]["comments"]] == [LIAM]
    assert by_number[1]["comments"] == [] and by_number[2]["objections"] == []
    # Liam gave no trailer: his name is on no patch's trailer list.
    assert all(t["email"] != LIAM for p in data["patches"] for t in p["trailers"])


def test_the_graph_page_shows_the_bot_report_on_the_series_restricted_mapping_needs(demo_reviewed, client):
    html = client.get(f"/graph/{RESTRICTED}/").content.decode()
    panel = html.split('id="review-panel"', 1)[1].split("</section>", 1)[0]
    assert "objections" in panel and "lockdep report" in panel
    assert '202503221412.5e7a9c1d-lkp@intel.com/"' in panel  # the report's mail, linked


def test_the_queue_lists_open_revisions_oldest_first_and_filters_by_reviewer_path_and_list(demo_reviewed, client):
    everything = client.get("/review/").context["states"]
    msgids = [s.revision.msgid for s in everything]
    assert UFFD_V3 in msgids and MAPPING_V8 in msgids
    assert "20250402151209.51274-1-kalyazin@amazon.com" not in msgids  # v2: v3 replaced it
    assert MAPPING_V7 not in msgids  # v8 replaced it
    dates = [s.waiting_since for s in everything]
    assert dates == sorted(dates)
    liam = client.get(f"/review/?reviewer={LIAM.upper()}").context["states"]
    assert [s.revision.msgid for s in liam] == [UFFD_V3]
    assert liam[0].reviewer_roles == ["commented"]
    kvm_only = {s.revision.msgid for s in client.get("/review/?path=virt/kvm/").context["states"]}
    assert UFFD_V3 in kvm_only and "20250422084530.88342-1-ravi.menon@example.org" not in kvm_only
    assert client.get("/review/?list=no-such-list").status_code == 400
    assert client.get("/review/?new=1").status_code == 400


def test_the_path_filter_reads_a_file_or_directory_as_git_does_and_combines_with_the_others(demo_reviewed, client):
    def queue(query):
        return [s.revision.msgid for s in client.get(f"/review/?{query}").context["states"]]

    open_states = list(ReviewState.objects.filter(open=True).order_by("waiting_since", "id"))

    def touching(path):  # read from the stored file list, not from the queue's own rows
        return [s.revision.msgid for s in open_states
                if any(f == path or f.startswith(path + "/") for f in s.files.split("\n") if f)]
    for path in ("virt/kvm", "virt", "mm", "tools/testing/selftests", "include/linux/kvm_host.h"):
        assert queue(f"path={path}") == queue(f"path=/{path}/") == touching(path), path
    assert touching("virt/kvm") and queue("path=virt/kv") == []  # part of a name is no path
    both = queue(f"reviewer={LIAM}&path=virt/kvm")
    assert both == [UFFD_V3]
    assert queue(f"reviewer={LIAM}&path=Documentation/no-such-dir") == []
    kvm = ReviewState.objects.get(revision__msgid=UFFD_V3).revision.mailing_list.name
    assert queue(f"reviewer={LIAM}&path=virt/kvm&list={kvm}") == [UFFD_V3]


def _reply(patch, who: str, msgid: str, trailer: str) -> bytes:
    return (f"From: {who}\nSubject: Re: {patch.subject}\nMessage-ID: <{msgid}>\n"
            f"In-Reply-To: <{patch.message.msgid}>\nReferences: <{patch.revision.msgid}> <{patch.message.msgid}>\n"
            f"Date: Wed, 19 Mar 2025 10:00:00 +0000\n\n> +x\n> +y\n\n{trailer}: {who}\n").encode()


def test_v8_carries_the_review_of_its_unchanged_patch_and_keeps_the_changed_ones_as_stale(demo_reviewed, client):
    v7 = {p.number: p for p in Revision.objects.get(msgid=MAPPING_V7).patches.select_related("message", "revision")}
    result = ingest.ingest([_reply(v7[1], "Vlastimil Babka <vbabka@suse.cz>", "vb-1@suse.cz", "Reviewed-by"),
                            _reply(v7[3], "Sean Christopherson <seanjc@google.com>", "sc-1@google.com", "Acked-by")],
                           "kvm", workers=0)
    review.recompute(sorted(result.revisions))
    v8 = {p["number"]: p for p in ReviewState.objects.get(revision__msgid=MAPPING_V8).data["patches"]}
    got = {n: [(t["email"], t["carried_from"], t["stale"]) for t in p["trailers"] if t["via"] != "own"]
           for n, p in v8.items()}
    # v8 1/4 is v7 1/4 unchanged (same patch-id); v8 3/4 changed.
    assert got == {1: [("vbabka@suse.cz", 7, False)], 2: [], 3: [("seanjc@google.com", 7, True)], 4: []}
    html = client.get(f"/series/{MAPPING_V8}/").content.decode()
    assert "carried from v7" in html and "given on v7, changed since" in html
    # New since he reviewed: his review of v7 is carried to v8, but he has not reviewed v8 itself.
    new = client.get("/review/?reviewer=vbabka@suse.cz&new=1").context["states"]
    assert [s.revision.msgid for s in new] == [MAPPING_V8]
    assert new[0].reviewer_roles == []


@pytest.mark.django_db(transaction=True)
def test_in_chromium_the_graph_page_shows_the_chains_review_and_the_queue_its_reviewers(demo_reviewed, page):
    from tests.support.browser import screenshot
    page.goto(f"{page.base}/graph/{UFFD_V3}/")
    panel = page.locator("#review-panel")
    rows = panel.locator("table.review-chain tbody tr")
    assert rows.count() == 2  # this series, then mapping v7 it needs
    assert "needs KVM: Mapping guest_memfd" in rows.nth(1).inner_text()
    assert LIAM in panel.inner_text()
    panel.scroll_into_view_if_needed()
    shot = screenshot(panel, "graph-review-uffd-minor-v3", full_page=False)
    page.goto(f"{page.base}/series/{UFFD_V3}/")
    screenshot(page.locator("#patches"), "series-review-patches", full_page=False)
    page.goto(f"{page.base}/review/?reviewer={LIAM}")
    assert page.locator("#review-queue tbody tr").count() == 1
    assert "support for uffd minor" in page.inner_text("#review-queue")
    page.goto(f"{page.base}/review/")
    queue = screenshot(page, "review-queue")
    assert shot.stat().st_size > 10_000 and queue.stat().st_size > 10_000


def test_queue_rows_escape_what_mail_authors_wrote_and_say_how_long_each_waited(demo_reviewed, client):
    from datetime import timedelta

    from reviewapp.web.review import waited
    Revision.objects.filter(msgid=UFFD_V3).update(title='<script>alert("x")</script> & more',
                                                 author_name="<b>Nikita</b>")
    html = client.get("/review/").content.decode()
    row = next(r for r in html.split("<tr>") if UFFD_V3 in r)
    assert "<script>" not in row and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in row
    assert "&lt;b&gt;Nikita&lt;/b&gt;" in row
    state = ReviewState.objects.get(revision__msgid=UFFD_V3)
    assert state.waiting_since.strftime("%Y-%m-%d") in row
    now = state.waiting_since
    assert [waited(now - timedelta(days=d), now) for d in (0, 1, 6, 15, 61, 800)] == [
        "today", "1 day", "6 days", "2 weeks", "2 months", "2 years"]
