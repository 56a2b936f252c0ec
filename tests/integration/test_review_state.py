"""Review state (issue 19), read by the API and the CLI (that the worker stores it when mail
arrives: tests/integration/test_fetch_worker.py); trailers equal to `b4 am`'s on real threads of the kselftest archive; carried and
stale reviews on real revision pairs; objections and the chain on the demo story."""
import json

import pytest
from django.core.management import call_command

from reviewapp.models import Revision, ReviewPerson, ReviewState
from reviewapp.services import ingest, review
from tests.support import b4_compare
from tests.support.shared import KSELFTEST_ARCHIVE, require

DEMO_V3 = "20250404132740.18342-1-kalyazin@amazon.com"
DEMO_MAPPING_V7 = "20250318142233.2716254-1-tabba@google.com"
DEMO_RESTRICTED = "20250319101548.2791123-1-tabba@google.com"


@pytest.mark.django_db
def test_a_bot_lockdep_report_is_an_open_objection_saying_why(demo_reviewed):
    data = ReviewState.objects.get(revision__msgid=DEMO_RESTRICTED).data
    assert data["state"] == "objections"
    (objection,) = data["summary"]["objections"]
    assert objection["email"] == "oliver.sang@intel.com" and objection["open"]
    assert objection["reason"].startswith("lockdep report")
    assert [o["msgid"] for o in data["patches"][1]["objections"]] == [objection["msgid"]]


@pytest.mark.django_db
def test_the_api_gives_the_review_of_a_series_and_of_the_chain_it_needs(demo_reviewed, client):
    got = client.get(f"/api/revisions/{DEMO_V3}/review").json()
    assert got["msgid"] == DEMO_V3 and got["state"] in ("reviewed", "partly-reviewed")
    first = got["patches"][0]
    assert set(first) >= {"msgid", "number", "trailers", "comments", "objections", "expected"}
    series_review = [t for t in first["trailers"] if t["via"] == "cover"]
    assert [(t["kind"], t["email"], t["carried_from"], t["stale"]) for t in series_review] == [
        ("Reviewed-by", "jthoughton@google.com", None, False)]
    assert [c["msgid"] for c in got["chain"]] == [DEMO_MAPPING_V7]
    mapping = got["chain"][0]
    assert (mapping["patches"], mapping["reviewed"]) == (4, ReviewState.objects.get(
        revision__msgid=DEMO_MAPPING_V7).reviewed)


@pytest.mark.django_db
def test_the_api_says_when_no_review_state_is_stored(demo, client):
    response = client.get(f"/api/revisions/{DEMO_V3}/review")
    assert response.status_code == 404 and "no stored review state" in response.json()["detail"]


@pytest.mark.django_db
def test_cli_review_computes_in_process_and_prints_json(demo, capsys):
    call_command("review", DEMO_RESTRICTED, "--json")
    out = json.loads(capsys.readouterr().out)
    assert out["state"] == "objections" and out["summary"]["objections_open"] == 1
    assert ReviewState.objects.filter(revision__msgid=DEMO_RESTRICTED).exists()


# ---------------------------------------------------------------- real archive threads

@pytest.fixture(scope="module")
def archive_threads():
    return b4_compare.threads_with_followup_trailers(require(KSELFTEST_ARCHIVE))


def _ingest_threads(threads) -> None:
    ingest.ingest([raw for t in threads for raw in t.raws], "linux-kselftest", workers=0)
    review.recompute(list(Revision.objects.live().values_list("id", flat=True)))


@pytest.mark.django_db
def test_trailers_equal_what_b4_am_applies_on_real_threads(archive_threads, tmp_path):
    sample = archive_threads[::40]  # spread over 2019-2021
    _ingest_threads(sample)
    rows = [row for n, t in enumerate(sample) for row in b4_compare.compare_thread(t, tmp_path / str(n))]
    equal = [r for r in rows if r["equal"]]
    with_trailers = [r for r in rows if r["b4_count"]]
    assert len(rows) >= 50 and len(with_trailers) >= 30
    assert len(equal) / len(rows) >= 0.95, [r for r in rows if not r["equal"]]


def _thread(threads, root):
    return next(t for t in threads if t.root == root)


@pytest.mark.django_db
def test_an_unchanged_patch_carries_its_ack_and_changed_patches_keep_theirs_as_stale(archive_threads):
    gup_v1, gup_v2 = "20191030224930.3990755-1-jhubbard@nvidia.com", "20191103211813.213227-1-jhubbard@nvidia.com"
    s390_v1, s390_v2 = "20190730100112.18205-1-thuth@redhat.com", "20190731133216.5620-1-thuth@redhat.com"
    _ingest_threads([_thread(archive_threads, m) for m in (gup_v1, gup_v2, s390_v1, s390_v2)])
    gup = ReviewState.objects.get(revision__msgid=gup_v2).data
    (carried,) = [t for p in gup["patches"] for t in p["trailers"] if t["carried_from"] is not None]
    assert (carried["kind"], carried["email"], carried["carried_from"], carried["stale"]) == (
        "Acked-by", "daniel.vetter@ffwll.ch", 1, False)
    s390 = ReviewState.objects.get(revision__msgid=s390_v2).data
    stale = [(p["number"], t["email"]) for p in s390["patches"] for t in p["trailers"] if t["stale"]]
    assert stale == [(1, "pbonzini@redhat.com")]  # v1's cover ack, patch 1 changed since
    # v1 2/2 became v2 3/3 and its author folded the ack in: the own trailer wins over the stale one.
    third = [(t["kind"], t["email"], t["via"]) for t in s390["patches"][2]["trailers"]]
    assert ("Acked-by", "pbonzini@redhat.com", "own") in third
    # He reviewed v1; on v2 his ack is carried, not given: v2 is "new since he reviewed".
    reviewed = ReviewPerson.objects.filter(email="daniel.vetter@ffwll.ch", role=ReviewPerson.REVIEWED)
    assert list(reviewed.values_list("revision__msgid", flat=True)) == [gup_v1]
