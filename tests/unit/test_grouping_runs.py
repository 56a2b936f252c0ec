"""Unthreaded runs and adopted covers: pure grouping rules on light mail dicts."""
from datetime import datetime, timedelta, timezone

from untangle import grouping

T0 = datetime(2021, 4, 21, 18, 32, tzinfo=timezone.utc)


def _mail(msgid, number, total=3, seconds=0, sender="a@x.org", version=1, subject=None, **kw):
    return dict(msgid=msgid, kind="cover" if number == 0 else "patch", version=version, number=number,
                total=total, in_reply_to=None, references=[], from_email=sender,
                date=T0 + timedelta(seconds=seconds),
                subject=subject or f"[PATCH {number}/{total}] thing {number}", title=f"thing {number}") | kw


def test_unthreaded_patches_of_one_run_share_the_lowest_numbered_head():
    mails = [_mail("p3", 3, seconds=4), _mail("p1", 1), _mail("p2", 2, seconds=2)]
    assert grouping.unthreaded_runs(mails) == {"p1": "p1", "p2": "p1", "p3": "p1"}


def test_an_unthreaded_cover_heads_its_run():
    assert set(grouping.unthreaded_runs([_mail("c", 0), _mail("p1", 1, seconds=30)]).values()) == {"c"}


def test_a_number_seen_again_starts_the_next_run():
    mails = [_mail("a1", 1), _mail("a2", 2, seconds=1), _mail("b1", 1, seconds=60), _mail("b2", 2, seconds=61)]
    assert grouping.unthreaded_runs(mails) == {"a1": "a1", "a2": "a1", "b1": "b1", "b2": "b1"}


def test_runs_split_on_gap_sender_version_total_or_prefixes():
    base = _mail("p1", 1)
    others = [_mail("late", 2, seconds=grouping.RUN_SECONDS + 1),
              _mail("bob", 2, sender="b@x.org"), _mail("v2", 2, version=2),
              _mail("of4", 2, total=4), _mail("net", 2, subject="[PATCH net 2/3] thing")]
    for other in others:
        assert grouping.unthreaded_runs([base, other]) == {}, other["msgid"]


def test_threaded_or_unnumbered_mails_are_never_in_a_run():
    mails = [_mail("p1", 1), _mail("p2", 2, seconds=1, in_reply_to="elsewhere"),
             _mail("p3", 3, seconds=2, references=["elsewhere"]), _mail("single", None, total=None, seconds=3)]
    assert grouping.unthreaded_runs(mails) == {}


def _root(**kw):
    return dict(msgid="root", kind="other", version=1, number=None, total=None, in_reply_to=None,
                references=[], from_email="a@x.org", date=T0, subject="arm64: bpf: a series", title="") | kw


def test_a_root_by_the_patch_author_heads_the_patches_replying_to_it():
    root = _root()
    patch = _mail("p1", 1, seconds=1, in_reply_to="root", references=["root"])
    lookup = {"root": root, "p1": patch}.get
    assert grouping.anchor_of(patch, lookup) == "root"


def test_a_root_by_someone_else_or_long_before_is_not_a_cover():
    for root in (_root(from_email="reporter@y.org"), _root(date=T0 - timedelta(days=1)),
                 _root(in_reply_to="older")):
        patch = _mail("p1", 1, seconds=1, in_reply_to="root", references=["root"])
        assert grouping.anchor_of(patch, {"root": root, "p1": patch}.get) == "p1"
