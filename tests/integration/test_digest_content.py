"""What a digest says, built from the database: the demo's uffd-minor story,
filters, periods, first versus later digests, and the 72-column rule."""
from datetime import datetime, timedelta, timezone

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from reviewapp.models import (ApplyRun, Dependency, Digest, Message, Revision, Subscription, Suite, SuiteRun,
                              Trailer, Tree)
from reviewapp.services import digests
from tests.support.demo import FASTPATH, MAPPING_V7, MAPPING_V8, UFFD_V2, UFFD_V3, ingest_demo_mails
from untangle import digest as pure

pytestmark = pytest.mark.django_db

# Everything below happens at fixed instants, whatever today is.
KNOWN = datetime(2026, 11, 10, 12, 0, tzinfo=timezone.utc)  # when the demo mails arrived
FIRST = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)  # a Monday
SECOND = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)  # the next Monday


def ingest_demo() -> None:
    ingest_demo_mails()
    Message.objects.update(received=KNOWN)


def rev(msgid: str) -> Revision:
    return Revision.objects.get(msgid=msgid)


def apply_run(root: Revision, status: str, finished: datetime, chain=(), failed=None,
              tree: str = "kvm-next") -> ApplyRun:
    tree_row = Tree.objects.get_or_create(name=tree, defaults={"source": "/srv/" + tree})[0]
    return ApplyRun.objects.create(tree=tree_row, root=root, status=status, finished=finished,
                                   chain=list(chain) + [root.msgid], failed=failed)


def suite_run(run: ApplyRun, status: str, finished: datetime, tests=()) -> SuiteRun:
    suite = Suite.objects.get_or_create(name="mm-selftests", defaults={"definition": {}})[0]
    return SuiteRun.objects.create(apply_run=run, suite=suite, status=status, finished=finished,
                                   tests=list(tests))


@pytest.fixture
def demo(settings):
    """The demo mails, uffd minor v3 applied with its chain and its selftests
    passing, the fast path conflicting; a linux-mm subscription on mm/."""
    settings.BASE_URL = "https://review.example.org"
    settings.DIGEST_SKIP_EMPTY = False
    ingest_demo()
    v3 = rev(UFFD_V3)
    run = apply_run(v3, ApplyRun.APPLIED, KNOWN, chain=[MAPPING_V7])
    suite_run(run, "pass", KNOWN, [{"name": "uffd-faults/minor_continue", "result": "ok"}])
    apply_run(rev(FASTPATH), ApplyRun.CONFLICT, KNOWN, chain=[MAPPING_V7, UFFD_V3],
              failed={"subject": "mm: userfaultfd: map up-to-date pages on minor faults"})
    # Every demo thread is Cc linux-mm; the mm/ path filter keeps this digest to the uffd story.
    sub = digests.subscribe("linux-mm@kvack.org", "weekly", paths=["mm/"])
    return {"sub": sub, "run": run, "v3": v3}


def over_width(body: str) -> list[str]:
    """Lines breaking the 72-column rule; a bare URL alone may (it can't be cut)."""
    return [line for line in body.splitlines()
            if pure.width(line) > 72 and not (line.startswith("http") and " " not in line)]


def test_first_linux_mm_digest_tells_the_uffd_minor_story(demo):
    text = digests.compose_text(demo["sub"], digests.due_period(demo["sub"], FIRST), FIRST)
    body = " ".join(text.body.split())  # compare across line wraps
    assert text.subject == "[reviewapp] linux-mm digest, 2026-11-16..23"
    # What it needs.
    assert ('[1] "KVM: guest_memfd: support for uffd minor" v3 Nikita Kalyazin, 2025-04-04'
            in body)
    assert ('built on, in apply order: 1. "KVM: Mapping guest_memfd backed memory at the host'
            ' for software protected VMs" v7' in body)
    # Whether it applies and passes.
    assert ('[1] "KVM: guest_memfd: support for uffd minor" v3 applies cleanly, chain included.'
            in body)
    assert '[1] "KVM: guest_memfd: support for uffd minor" v3 selftests pass.' in body
    assert "does not apply: conflict in mm: userfaultfd: map up-to-date pages" in body
    # What is stale.
    assert ('"KVM: guest_memfd: support for uffd minor" v3 is built on "KVM: Mapping guest_memfd'
            ' backed memory at the host for software protected VMs" v7; v8 was posted on'
            ' 2025-04-18.' in body)
    assert f"{django_settings.LORE_URL}/{MAPPING_V8}/" in body  # links go to the archive LORE_URL names
    # Reviews (James on the cover, Peter on patch 2), links to the app.
    assert "Reviewed-by: 2, Acked-by: 1." in body
    assert f"series: https://review.example.org/s/{demo['v3'].pk}" in body
    assert f"tree: https://review.example.org/tree/{demo['run'].pk}/" in body


def test_first_digest_leaves_out_superseded_revisions_and_other_paths(demo):
    items = digests.items_for(demo["sub"], digests.due_period(demo["sub"], FIRST))
    assert [i.msgid for i in items] == [UFFD_V3, FASTPATH]  # v2 superseded; v8 not in mm/


def test_list_filter_matches_the_list_id_form_and_watch_follows_new_revisions(demo):
    by_list = digests.subscribe("kvm@vger.kernel.org", lists=["kvm"])
    period = digests.due_period(by_list, FIRST)
    assert MAPPING_V8 in {i.msgid for i in digests.items_for(by_list, period)}
    watcher = digests.subscribe("me@example.org", watched=[UFFD_V2])
    items = digests.items_for(watcher, digests.due_period(watcher, FIRST))
    assert [i.msgid for i in items] == [UFFD_V3]


def test_authors_own_review_tags_are_not_counted(demo):
    v3 = demo["v3"]
    patch = v3.patches.first()
    Trailer.objects.create(kind="Reviewed-by", name="Nikita Kalyazin", email=v3.author_email,
                           value=f"Nikita Kalyazin <{v3.author_email}>", message=patch.message,
                           patch=patch)
    assert digests._reviews(v3, FIRST).reviewed_by == 2


def test_the_72_column_rule_holds_on_real_first_and_later_digests(demo):
    sub = demo["sub"]
    first = digests.compose_due(sub, FIRST)
    Digest.objects.filter(pk=first.pk).update(state=Digest.SENT)
    Message.objects.filter(revision=rev(MAPPING_V8)).update(received=FIRST + timedelta(days=2))
    later = digests.compose_due(sub, SECOND)
    everything = digests.subscribe("all@example.org", "daily")
    for body in (first.body, later.body, digests.preview(everything, FIRST)["body"]):
        assert body.strip() and over_width(body) == []


def test_later_digest_covers_the_period_since_the_previous_one(demo):
    sub = demo["sub"]
    first = digests.compose_due(sub, FIRST)
    assert digests.compose_due(sub, FIRST + timedelta(hours=1)) is None  # not due again
    Digest.objects.filter(pk=first.pk).update(state=Digest.SENT)
    # In the week after: mapping v8 makes the chain stale, the fast path starts applying.
    Message.objects.filter(revision=rev(MAPPING_V8)).update(received=FIRST + timedelta(days=2))
    apply_run(rev(FASTPATH), ApplyRun.APPLIED, FIRST + timedelta(days=3), chain=[MAPPING_V8, UFFD_V3])
    later = digests.compose_due(sub, SECOND)
    assert (later.period_start, later.period_end) == (FIRST, datetime(2026, 11, 30, tzinfo=timezone.utc))
    assert later.subject == "[reviewapp] linux-mm digest, 2026-11-23..29"
    assert later.in_reply_to == first.message_id
    body = " ".join(later.body.split())
    assert "What changed on linux-mm between 2026-11-23 and 2026-11-29" in body
    assert '"mm: userfaultfd: fast path for minor faults" v1 started applying' in body
    assert "v8 was posted on 2025-04-18" in body
    assert "0 new in this period" in body


def test_a_chain_that_stops_applying_is_reported(demo):
    sub = demo["sub"]
    Digest.objects.filter(pk=digests.compose_due(sub, FIRST).pk).update(state=Digest.SENT)
    apply_run(demo["v3"], ApplyRun.CONFLICT, FIRST + timedelta(days=1), chain=[MAPPING_V7],
              failed={"subject": "mm: provide can_userfault vma operation"})
    body = " ".join(digests.compose_due(sub, SECOND).body.split())
    assert ('"KVM: guest_memfd: support for uffd minor" v3 stopped applying: conflict in mm:'
            ' provide can_userfault vma operation.' in body)


def test_quiet_week_is_one_line_or_skipped_when_configured(demo, settings):
    sub = demo["sub"]
    Digest.objects.filter(pk=digests.compose_due(sub, FIRST).pk).update(state=Digest.SENT)
    quiet = digests.compose_due(sub, SECOND)
    assert quiet.state == Digest.COMPOSED
    assert quiet.body == "Nothing new on linux-mm between 2026-11-23 and 2026-11-29.\n"
    settings.DIGEST_SKIP_EMPTY = True
    skipped = digests.compose_due(sub, SECOND + timedelta(days=7))
    assert skipped.state == Digest.EMPTY and skipped.body.startswith("Nothing new on linux-mm")
    # Recorded, so the period is done: not composed again.
    assert digests.due_period(sub, SECOND + timedelta(days=7)) is None


def test_daily_and_weekly_periods_are_previous_utc_day_and_iso_week():
    sunday_night = datetime(2026, 11, 29, 23, 59, tzinfo=timezone.utc)
    monday = datetime(2026, 11, 30, 0, 30, tzinfo=timezone.utc)
    assert digests.period_end("weekly", sunday_night) == datetime(2026, 11, 23, tzinfo=timezone.utc)
    assert digests.period_end("weekly", monday) == datetime(2026, 11, 30, tzinfo=timezone.utc)
    assert digests.period_end("daily", monday) == datetime(2026, 11, 30, tzinfo=timezone.utc)
    sub = Subscription.objects.create(address="a@example.org", period="daily", name="x")
    midnight = monday.replace(minute=0)
    Digest.objects.create(subscription=sub, period_start=midnight - timedelta(days=5),
                          period_end=midnight - timedelta(days=4), message_id="<m1@x>",
                          subject="s", body="b", state=Digest.SENT)
    # The worker was down for three days: one digest covers the gap, none is lost.
    period = digests.due_period(sub, monday)
    assert (period.start, period.end, period.first) == (midnight - timedelta(days=4), midnight, False)
    assert period.days == (datetime(2026, 11, 26).date(), datetime(2026, 11, 29).date())


def test_cli_subscribe_prints_the_id_and_preview_prints_the_text(demo, capsys):
    call_command("digest", "subscribe", "linux-mm@kvack.org", "--period", "daily",
                 "--list", "linux-mm", "--path", "mm/", "--path", "virt/kvm/")
    sub_id = int(capsys.readouterr().out.strip())
    sub = Subscription.objects.get(pk=sub_id)
    assert (sub.period, sub.lists, sub.paths) == ("daily", ["linux-mm"], ["mm/", "virt/kvm/"])
    call_command("digest", "preview", str(sub_id))
    out = capsys.readouterr().out
    assert out.startswith("Subject: [reviewapp] linux-mm digest, ")
    assert "support for uffd minor" in out and "Unsubscribe" in out


def test_row_fallback_finds_the_same_chain_as_the_graph_service(demo):
    rows_chain, rows_missing = digests._chain_from_rows(rev(FASTPATH))
    graph_chain, graph_missing = digests.chain_of(rev(FASTPATH))
    assert [r.msgid for r in rows_chain] == [r.msgid for r in graph_chain] == [MAPPING_V7, UFFD_V3]
    assert rows_missing == graph_missing == []


def test_a_dependency_that_could_not_be_fetched_is_reported_missing(demo):
    v3 = demo["v3"]
    Dependency.objects.create(source=v3, kind=Dependency.DEPENDS_ON, target="gone-1@example.org",
                              how="tag", evidence="Depends-on: <gone-1@example.org>",
                              evidence_msgid=v3.msgid, error="404 from lore")
    body = " ".join(digests.compose_text(demo["sub"], digests.due_period(demo["sub"], FIRST),
                                         FIRST).body.split())
    assert ('"KVM: guest_memfd: support for uffd minor" v3 depends on a mail that could not be'
            ' fetched:' in body)
    assert f"wanted: {django_settings.LORE_URL}/gone-1@example.org/" in body


@pytest.mark.django_db
def test_a_list_only_in_cc_selects_the_series(data_dir):
    from django.core.management import call_command
    from reviewapp.services import digests
    call_command("demo", "load", "--no-runs")
    sub = digests.subscribe("linux-mm@kvack.org", lists=["linux-mm"])
    titles = {r.title for r in digests.matching(sub)}
    assert "KVM: guest_memfd: support for uffd minor" in titles  # archived from kvm, Cc linux-mm
    other = digests.subscribe("netdev@vger.kernel.org", lists=["netdev"])
    assert not digests.matching(other).exists()


def test_each_series_gets_its_review_state_and_what_moved_since_the_last_digest(demo):
    from reviewapp.services import ingest, review
    review.recompute(list(Revision.objects.values_list("id", flat=True)))
    sub = demo["sub"]
    first = " ".join(digests.compose_due(sub, FIRST).body.split())
    v3 = Revision.objects.get(msgid=UFFD_V3).review
    assert f"v3 Reviewed-by: 2, Acked-by: 1. {v3.state}: {v3.reviewed} of 4 patches reviewed." in first
    Digest.objects.filter(subscription=sub).update(state=Digest.SENT)
    patch = rev(UFFD_V3).patches.get(number=2)
    reply = (f"From: Liam R. Howlett <Liam.Howlett@oracle.com>\nSubject: Re: {patch.subject}\n"
             f"Message-ID: <liam-rb@oracle.com>\nIn-Reply-To: <{patch.message.msgid}>\n"
             f"References: <{UFFD_V3}> <{patch.message.msgid}>\nDate: Wed, 25 Nov 2026 10:00:00 +0000\n\n"
             "> +x\n> +y\n\nThanks for the rework.\n\nReviewed-by: Liam R. Howlett <Liam.Howlett@oracle.com>\n")
    result = ingest.ingest([reply.encode()], "kvm", workers=0)
    Message.objects.filter(msgid="liam-rb@oracle.com").update(received=SECOND - timedelta(days=3))
    review.recompute(sorted(result.revisions))
    later = " ".join(digests.compose_due(sub, SECOND).body.split())
    assert "since the last digest: 1 new review trailer." in later
