"""Digest mails: content, 72-column layout, MIME encoding, threading, and
delivery through a real SMTP server (aiosmtpd on 127.0.0.1)."""
import email
import email.policy
import re
import socket
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest

from tests.support.smtp_server import SmtpServer
from untangle import digest as d

NOW = datetime(2025, 4, 14, 6, 0, tzinfo=timezone.utc)
WEEK = (date(2025, 4, 7), date(2025, 4, 13))
BASE = "https://review.example.org"
UNSUB = BASE + "/u/7/" + "AbCdEf0123456789" * 5  # signed token: longer than 72
MAPPING_V7 = d.RevisionRef(msgid="20250318161823.4005529-1-tabba@google.com",
                           subject="KVM: Mapping guest_memfd backed memory at the host for"
                                   " software protected VMs", version=7)
MAPPING_V4 = d.RevisionRef(msgid="20250218172500.807733-1-tabba@google.com",
                           subject=MAPPING_V7.subject, version=4)
RESTRICTED = "20250117163001.2326672-1-tabba@google.com"


def subscription(**over):
    sub = d.DigestSubscription(address="reviewer@example.org", name="linux-mm",
                               period="weekly", lists=("linux-mm", "kvm"),
                               paths=("mm/", "virt/kvm/"), unsubscribe_url=UNSUB)
    return replace(sub, **over)


def item(**over):
    base = d.DigestItem(msgid="20250404154352.23078-1-kalyazin@amazon.com",
                        subject="KVM: guest_memfd: support for uffd minor", version=3,
                        author="Nikita Kalyazin <kalyazin@amazon.com>",
                        date="2025-04-04T15:43:52+00:00", list="kvm",
                        url=BASE + "/s/42", tree_url=BASE + "/s/42/tree",
                        new_in_period=True, chain=(MAPPING_V7,),
                        apply=d.ApplyState("applied", changed="started applying"),
                        suite=d.SuiteState("pass"),
                        reviews=d.ReviewCounts())
    return replace(base, **over)


def demo_items():
    """uffd minor v3 on mapping v7 (v8 posted meanwhile), applies, passes;
    direct map removal v4 stopped applying, fails, and wants the restricted
    mapping series that could not be fetched; a series by a non-ASCII author."""
    uffd = item(stale=(d.StaleDependency(MAPPING_V7, newer_version=8,
                                         newer_msgid="20250410101010.1111111-1-tabba@google.com",
                                         newer_date="2025-04-10T10:10:10+00:00"),),
                reviews=d.ReviewCounts(reviewed_by=2, acked_by=1))
    dmr = item(msgid="20250221095031.3204-1-roypat@amazon.co.uk",
               subject="Direct Map Removal for guest_memfd", version=4,
               author="Patrick Roy <roypat@amazon.co.uk>", date="2025-02-21",
               url=BASE + "/s/17", tree_url=None, new_in_period=False,
               chain=(MAPPING_V4,),
               apply=d.ApplyState("conflict", changed="stopped applying",
                                  failed_patch="[PATCH v4 03/12] mm: introduce AS_NO_DIRECT_MAP"),
               suite=d.SuiteState("fail", failed_tests=("kvm:guest_memfd_test", "mm:uffd-unit-tests")),
               missing=(d.MissingDependency(RESTRICTED, "not found on lore (HTTP 404)"),))
    iommu = item(msgid="20250409120000.5555-1-joro@8bytes.org",
                 subject="iommu: Rework domain allocation", version=2,
                 author="Jörg Rödel <joro@8bytes.org>", date="2025-04-09",
                 list="linux-mm", url=BASE + "/s/51", tree_url=None, chain=(),
                 apply=d.ApplyState("applied"),
                 suite=d.SuiteState(None),
                 reviews=d.ReviewCounts(tested_by=1, nacked_by=1))
    return [uffd, dmr, iommu]


def flat(text):
    """The body with wrapping undone, to look for phrases."""
    return " ".join(text.split())


def section(body, title):
    """Text of one section: from its title to the next underlined title."""
    lines = body.split("\n")
    start = lines.index(title)
    assert lines[start + 1] == "-" * len(title)
    rest = lines[start + 2:]
    end = next((i for i in range(len(rest) - 1)
                if rest[i + 1] and set(rest[i + 1]) == {"-"} and rest[i]), len(rest))
    return "\n".join(rest[:end])


def line_problems(body):
    """Lines wider than 72 columns that are not a lone, unindented URL
    which is itself wider than 72 (the one allowed exception)."""
    bad = []
    for line in body.split("\n"):
        if d.width(line) <= 72:
            continue
        if re.fullmatch(r"https?://\S+", line):
            continue
        bad.append(line)
    return bad


def later(items, **kw):
    return d.compose(subscription(**kw), items, WEEK, False, BASE, NOW)


# ---------------------------------------------------------------- content

def test_first_digest_says_it_shows_everything_still_open():
    out = d.compose(subscription(), demo_items(), WEEK, True, BASE, NOW)
    body = out.body
    assert "the state of everything still open that matches" in flat(body)
    assert "as of 2025-04-14 06:00 UTC" in flat(body)
    # Everything is listed as open, not only what is new in the period.
    opened = section(body, "Open series and revisions")
    assert '"Direct Map Removal for guest_memfd" v4' in opened
    # Standing apply state is reported, not only changes.
    assert "applies cleanly" in section(body, "Apply state")
    assert out.empty is False


def test_later_digest_lists_only_new_revisions_as_new():
    body = later(demo_items()).body
    assert "between 2025-04-07 and 2025-04-13" in flat(body)
    new = section(body, "New series and revisions")
    assert "support for uffd minor" in new
    assert "Direct Map Removal" not in new
    assert "3 series revisions, 2 new in this period." in flat(body)


def test_new_revision_shows_author_date_list_and_chain_in_apply_order():
    root = d.RevisionRef(msgid="a@x", subject="mm: base work", version=2)
    mid = d.RevisionRef(msgid="b@x", subject="mm: middle work", version=5)
    body = later([item(chain=(root, mid))]).body
    new = flat(section(body, "New series and revisions"))
    assert "Nikita Kalyazin <kalyazin@amazon.com>, 2025-04-04, kvm" in new
    assert '1. "mm: base work" v2 2. "mm: middle work" v5' in new


def test_series_without_dependencies_says_it_applies_on_its_own():
    body = later([item(chain=())]).body
    assert "no in-flight dependencies" in flat(section(body, "New series and revisions"))


def test_apply_changes_report_start_and_stop_with_failing_patch():
    body = later(demo_items()).body
    apply = flat(section(body, "Apply changes"))
    assert '"KVM: guest_memfd: support for uffd minor" v3 started applying' in apply
    assert ('"Direct Map Removal for guest_memfd" v4 stopped applying: conflict in'
            " [PATCH v4 03/12] mm: introduce AS_NO_DIRECT_MAP.") in apply


def test_new_revision_that_does_not_apply_says_why():
    body = later([item(apply=d.ApplyState("failed", failed_patch="[PATCH v3 2/6] mm: foo"))]).body
    assert "does not apply: [PATCH v3 2/6] mm: foo failed to apply." in flat(
        section(body, "Apply changes"))


def test_unchanged_apply_state_of_old_revision_is_not_news():
    old = item(new_in_period=False,
               apply=d.ApplyState("applied"))
    body = later([old]).body
    assert "Apply changes" not in body


def test_suite_results_name_failed_tests():
    body = later(demo_items()).body
    suite = flat(section(body, "Selftest results"))
    assert "uffd minor\" v3 selftests pass." in suite
    assert "selftests FAIL: kvm:guest_memfd_test, mm:uffd-unit-tests." in suite
    # The third series has no suite result: it is not mentioned there.
    assert "iommu" not in suite


def test_suite_timeout_and_crash_are_worded():
    body = later([item(suite=d.SuiteState("timeout", failed_tests=("kvm:x",))),
                  item(msgid="c@x", suite=d.SuiteState("crashed"))]).body
    suite = flat(section(body, "Selftest results"))
    assert "selftests timed out: kvm:x." in suite
    assert "the test kernel crashed." in suite


def test_stale_dependency_names_newer_version_and_its_date():
    body = later(demo_items()).body
    deps = flat(section(body, "Stale or missing dependencies"))
    assert ('"KVM: guest_memfd: support for uffd minor" v3 is built on "KVM: Mapping'
            ' guest_memfd backed memory at the host for software protected VMs" v7;'
            " v8 was posted on 2025-04-10.") in deps
    assert "https://lore.kernel.org/all/20250410101010.1111111-1-tabba@google.com" in deps


def test_missing_dependency_gives_error_and_lore_link():
    body = later(demo_items()).body
    deps = flat(section(body, "Stale or missing dependencies"))
    assert "could not be fetched: not found on lore (HTTP 404)." in deps
    assert f"https://lore.kernel.org/all/{RESTRICTED}" in deps


def test_review_tags_are_counted_and_absent_ones_said_so():
    body = later(demo_items()).body
    reviews = flat(section(body, "Review state"))
    assert "uffd minor\" v3 Reviewed-by: 2, Acked-by: 1." in reviews
    assert "guest_memfd\" v4 no review tags yet." in reviews
    assert "Tested-by: 1, Nacked-by: 1." in reviews


def test_links_use_short_lore_and_series_forms():
    body = later(demo_items()).body
    links = section(body, "Links")
    assert "https://lore.kernel.org/all/20250404154352.23078-1-kalyazin@amazon.com" in links
    assert BASE + "/s/42" in links and BASE + "/s/42/tree" in links
    assert "<html" not in body.lower() and "href" not in body


def test_footer_has_signature_separator_and_unsubscribe_link():
    out = later(demo_items())
    lines = out.body.split("\n")
    assert "-- " in lines
    assert UNSUB in lines[lines.index("-- "):]
    assert "Weekly linux-mm digest from reviewapp for reviewer@example.org." in lines
    assert out.unsubscribe_url == UNSUB


# ---------------------------------------------------------------- layout

def test_every_line_of_demo_digest_fits_72_columns():
    for first in (True, False):
        body = d.compose(subscription(), demo_items(), WEEK, first, BASE, NOW).body
        assert line_problems(body) == []
        assert not any(line != line.rstrip() for line in body.split("\n") if line != "-- ")


def test_every_line_fits_72_columns_with_hostile_input():
    long_subject = ("mm/hugetlb: " + "very " * 30 + "long subject with a "
                    "token_that_is_far_longer_than_seventy_two_columns_and_has_no_spaces_at_all_x")
    wide = "山田太郎" * 6 + " <yamada@example.jp>"  # 48 wide characters
    long_msgid = "CAHk-=wj" + "x" * 70 + "@mail.gmail.com"
    it = item(subject=long_subject, author=wide, msgid=long_msgid,
              chain=(d.RevisionRef(msgid=long_msgid, subject=long_subject, version=11),),
              suite=d.SuiteState("fail", failed_tests=tuple(f"kvm:test_{i}_" + "y" * 30
                                                            for i in range(8))),
              stale=(d.StaleDependency(d.RevisionRef(msgid=long_msgid, subject=long_subject, version=1),
                                       newer_msgid=long_msgid, newer_version=2,
                                       newer_date="2025-04-10"),),
              missing=(d.MissingDependency(long_msgid, "timeout " * 20),),
              url=BASE + "/s/" + "9" * 80)
    body = later([it], address="someone." * 12 + "@example.org").body
    assert line_problems(body) == []


def test_url_too_long_for_a_line_sits_alone_unindented():
    long_msgid = "CAHk-=wj" + "x" * 70 + "@mail.gmail.com"
    body = later([item(msgid=long_msgid)]).body
    url = d.lore_url(long_msgid)
    assert url in body.split("\n")  # alone on its line, whole, not indented
    assert d.width(url) > 72


def test_url_that_fits_keeps_its_label_or_indent():
    short = "https://lore.kernel.org/r"  # lore's short form, as LORE_URL may name it
    body = d.compose(subscription(), [item()], WEEK, False, BASE, NOW, lore=short).body
    assert "  series: https://review.example.org/s/42" in body.split("\n")
    lore = d.lore_url("20250404154352.23078-1-kalyazin@amazon.com", short)
    # 70 columns: too long beside its label, short enough to stay indented.
    assert "  " + lore in body.split("\n")


def test_wrap_counts_wide_characters_as_two_columns():
    lines = d.wrap("山" * 50)
    assert [d.width(line) for line in lines] == [72, 28]
    assert d.width("Jörg Rödel") == 10
    assert d.width("e\u0301") == 1  # e + combining acute


def test_wrap_never_breaks_a_url():
    url = "https://example.org/" + "a" * 100
    lines = d.wrap("see " + url + " for details", "    ")
    assert lines == ["    see", url, "    for details"]


# ---------------------------------------------------------------- empty / subject

def test_empty_period_is_a_single_flagged_line():
    out = d.compose(subscription(), [], (date(2026, 11, 23), date(2026, 11, 29)),
                    False, BASE, NOW)
    assert out.empty is True
    assert out.body == "Nothing new on linux-mm between 2026-11-23 and 2026-11-29.\n"


def test_empty_daily_digest_names_the_day():
    out = d.compose(subscription(period="daily"), [], (date(2026, 11, 23),) * 2,
                    False, BASE, NOW)
    assert out.body == "Nothing new on linux-mm on 2026-11-23.\n"
    assert out.subject == "[reviewapp] linux-mm digest, 2026-11-23"


def test_first_digest_with_nothing_open_is_flagged_empty():
    out = d.compose(subscription(), [], WEEK, True, BASE, NOW)
    assert out.empty is True and out.body.count("\n") == 1


@pytest.mark.parametrize("start,end,label", [
    (date(2026, 11, 23), date(2026, 11, 29), "2026-11-23..29"),
    (date(2026, 11, 30), date(2026, 12, 6), "2026-11-30..12-06"),
    (date(2026, 12, 28), date(2027, 1, 3), "2026-12-28..2027-01-03"),
    (date(2026, 11, 23), date(2026, 11, 23), "2026-11-23"),
])
def test_subject_formats_period_ranges(start, end, label):
    out = d.compose(subscription(), [item()], (start, end), False, BASE, NOW)
    assert out.subject == f"[reviewapp] linux-mm digest, {label}"


# ---------------------------------------------------------------- message id

def test_message_id_is_the_same_for_the_same_subscription_and_period():
    first = d.make_message_id(7, date(2025, 4, 7), "review.example.org")
    again = d.make_message_id("7", datetime(2025, 4, 7, 23, 59), "review.example.org")
    assert first == again
    assert re.fullmatch(r"<[^<>@\s]+@review\.example\.org>", first)
    others = {d.make_message_id(8, date(2025, 4, 7), "review.example.org"),
              d.make_message_id(7, date(2025, 4, 14), "review.example.org"),
              d.make_message_id(17, date(2025, 4, 7), "review.example.org")}
    assert first not in others and len(others) == 3


def test_message_id_refuses_ids_that_would_need_rewriting():
    with pytest.raises(ValueError):
        d.make_message_id("7 8", date(2025, 4, 7), "review.example.org")
    with pytest.raises(ValueError):
        d.make_message_id(7, date(2025, 4, 7), "bad domain>")


# ---------------------------------------------------------------- MIME + SMTP

FROM = "reviewapp <digest@review.example.org>"


def message(items, to="Jörg Rödel <joro@8bytes.org>", in_reply_to=None, period=WEEK):
    out = d.compose(subscription(), items, period, False, BASE, NOW)
    mid = d.make_message_id(7, period[0], "review.example.org")
    return out, d.build_message(out, FROM, to, mid, in_reply_to, NOW)


def deliver(msg, **settings):
    with SmtpServer() as server:
        d.send(msg, server.settings(**settings))
        assert len(server.messages) == 1
        return server.messages[0]


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_non_ascii_author_arrives_intact_through_real_smtp():
    out, msg = message(demo_items())
    received = deliver(msg)
    assert received.rcpt_tos == ["joro@8bytes.org"]
    assert received.mail_from == "digest@review.example.org"
    assert max(received.data) < 128  # encoded for any relay: nothing 8-bit on the wire
    back = parse(received.data)
    assert back.get_content_type() == "text/plain"
    assert back.get_content_charset() == "utf-8"
    assert back["Content-Transfer-Encoding"] == "quoted-printable"
    assert back.get_content().replace("\r\n", "\n") == out.body
    assert "Jörg Rödel <joro@8bytes.org>, 2025-04-09, linux-mm" in back.get_content()
    assert str(back["To"]) == "Jörg Rödel <joro@8bytes.org>"
    assert b"=?utf-8?" in received.data  # RFC 2047 in the To header
    assert back["Subject"] == out.subject


def test_non_ascii_subject_is_rfc2047_encoded_and_decodes_back():
    out = d.compose(subscription(name="Jörg's list"), [item()], WEEK, False, BASE, NOW)
    msg = d.build_message(out, FROM, "joro@8bytes.org", "<a@b>", None, NOW)
    back = parse(deliver(msg).data)
    assert back["Subject"] == "[reviewapp] Jörg's list digest, 2025-04-07..13"


def test_ascii_digest_goes_as_7bit():
    _, msg = message([item()], to="reviewer@example.org")
    back = parse(deliver(msg).data)
    assert back["Content-Transfer-Encoding"] == "7bit"


def test_digest_headers_for_automated_mail():
    out, msg = message([item()])
    raw = deliver(msg).data
    back = parse(raw)
    assert back["Auto-Submitted"] == "auto-generated"
    assert back["Message-ID"] == "<reviewapp-digest.7.20250407@review.example.org>"
    assert back["Date"].datetime == NOW
    assert back["From"].addresses[0].addr_spec == "digest@review.example.org"
    # The long signed URL stays verbatim (not RFC 2047-encoded).
    assert f"List-Unsubscribe: <{UNSUB}>".encode() in raw
    assert "In-Reply-To" not in back and "References" not in back


def test_each_digest_replies_to_the_previous_one():
    previous = d.make_message_id(7, date(2025, 3, 31), "review.example.org")
    _, msg = message([item()], in_reply_to=previous)
    back = parse(deliver(msg).data)
    assert back["In-Reply-To"] == previous
    assert back["References"] == previous


def test_previous_id_stored_without_brackets_still_threads():
    _, msg = message([item()], in_reply_to="reviewapp-digest.7.20250331@review.example.org")
    back = parse(deliver(msg).data)
    assert back["In-Reply-To"] == "<reviewapp-digest.7.20250331@review.example.org>"


def test_long_previous_message_id_is_not_mangled_in_threading_headers():
    # The stdlib would RFC 2047-encode a long id in these headers.
    previous = "<reviewapp-digest." + "9" * 60 + ".20250331@review.example.org>"
    _, msg = message([item()], in_reply_to=previous)
    raw = deliver(msg).data
    assert f"In-Reply-To: {previous}".encode() in raw
    assert f"References: {previous}".encode() in raw


def test_temporary_refusal_then_retry_delivers_exactly_once():
    _, msg = message([item()])
    with SmtpServer() as server:
        server.refuse(451)
        with pytest.raises(d.SendError) as err:
            d.send(msg, server.settings())
        assert err.value.temporary is True and err.value.code == 451
        assert "451" in str(err.value)
        assert server.messages == []
        server.accept()
        d.send(msg, server.settings())
        assert len(server.messages) == 1


@pytest.mark.parametrize("code,at,temporary", [
    (550, "DATA", False), (554, "DATA", False),
    (451, "RCPT", True), (550, "RCPT", False),
])
def test_refusal_code_decides_whether_retrying_helps(code, at, temporary):
    _, msg = message([item()])
    with SmtpServer() as server:
        server.refuse(code, at=at)
        with pytest.raises(d.SendError) as err:
            d.send(msg, server.settings())
        assert err.value.temporary is temporary
        assert err.value.code == code
        assert server.messages == []


def test_unreachable_server_is_a_temporary_error():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _, msg = message([item()])
    with pytest.raises(d.SendError) as err:
        d.send(msg, {"host": "127.0.0.1", "port": port, "timeout": 5})
    assert err.value.temporary is True


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_with_right_password_delivers_and_wrong_one_is_permanent():
    _, msg = message([item()])
    with SmtpServer(auth=("digest", "s3cret")) as server:
        with pytest.raises(d.SendError) as err:
            d.send(msg, server.settings(password="wrong"))
        assert err.value.temporary is False and err.value.code == 535
        d.send(msg, server.settings())
        assert len(server.messages) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_server_requiring_login_refuses_anonymous_sender():
    _, msg = message([item()])
    with SmtpServer(auth=("digest", "s3cret")) as server:
        with pytest.raises(d.SendError) as err:
            d.send(msg, server.settings(user=None))
        assert err.value.temporary is False  # 530: configuration, not transient
        assert server.messages == []


def test_starttls_against_a_server_without_it_is_a_configuration_error():
    _, msg = message([item()])
    with SmtpServer() as server:
        with pytest.raises(d.SendError) as err:
            d.send(msg, server.settings(starttls=True))
        assert err.value.temporary is False
        assert "starttls" in str(err.value).lower()


def test_envelope_sender_can_differ_from_from_header():
    _, msg = message([item()])
    received = deliver(msg, envelope_from="bounces@review.example.org")
    assert received.mail_from == "bounces@review.example.org"
    assert parse(received.data)["From"].addresses[0].addr_spec == "digest@review.example.org"


def test_same_period_resend_builds_an_identical_message_id():
    # The lead's store detects a duplicate by this id after a crash.
    _, one = message([item()])
    _, two = message([item(suite=d.SuiteState("fail", failed_tests=("x",)))])
    assert one["Message-ID"] == two["Message-ID"]
    _, next_week = message([item()], period=(WEEK[0] + timedelta(7), WEEK[1] + timedelta(7)))
    assert next_week["Message-ID"] != one["Message-ID"]


def test_lore_links_follow_the_archive_the_site_uses():
    body = d.compose(subscription(), demo_items(), WEEK, False, BASE, NOW,
                     lore="http://127.0.0.1:8080/linux-mm/").body
    links = flat(section(body, "Links"))
    assert "http://127.0.0.1:8080/linux-mm/20250404154352.23078-1-kalyazin@amazon.com/" in links
    assert "lore.kernel.org" not in body


def test_item_without_an_apply_run_has_no_apply_line_even_on_a_first_digest():
    out = d.compose(subscription(), [item(apply=None),
                                     item(msgid="c@x", subject="other", apply=d.ApplyState("applied"))],
                    WEEK, True, BASE, NOW)
    apply = section(out.body, "Apply state")
    assert '"other" v3 applies cleanly' in flat(apply)
    assert "support for uffd minor" not in apply


def test_item_with_no_suite_verdict_has_no_selftest_line():
    body = later([item(suite=None), item(msgid="c@x", subject="other", suite=d.SuiteState(None))]).body
    assert "Selftest results" not in body


def test_review_counts_keep_the_four_review_tags_only():
    counts = d.ReviewCounts.from_tags({"Reviewed-by": 2, "Nacked-by": 1, "Signed-off-by": 9})
    assert counts == d.ReviewCounts(reviewed_by=2, nacked_by=1)
    assert "Reviewed-by: 2, Nacked-by: 1." in flat(later([item(reviews=counts)]).body)


def test_composed_digest_keeps_the_preview_json_shape():
    out = later([])
    assert out.to_json() == {"subject": "[reviewapp] linux-mm digest, 2025-04-07..13",
                             "body": "Nothing new on linux-mm between 2025-04-07 and 2025-04-13.\n",
                             "empty": True, "unsubscribe_url": UNSUB}


def test_review_words_name_the_state_and_what_moved_and_stay_as_they_were_without_it():
    counts = d.ReviewCounts(reviewed_by=1)
    assert d._review_words(counts) == "Reviewed-by: 1."
    moved = d.ReviewProgress(state="objections", patches=4, reviewed=1, objections_open=1,
                             new_trailers=2, new_objections=1, gone_stale=3)
    assert d._review_words(counts, moved) == (
        "Reviewed-by: 1. objections: 1 of 4 patches reviewed, 1 open objection; since the last digest:"
        " 2 new review trailers, 1 new objection, 3 reviews gone stale.")
    quiet = d.ReviewProgress(state="waiting", patches=2, reviewed=0)
    assert d._review_words(d.ReviewCounts(), quiet) == "no review tags yet. waiting: 0 of 2 patches reviewed."


def test_a_series_that_reached_the_list_in_part_says_so_and_names_its_cover():
    body = later([item(partial=d.PartialPosting(2, 6, "cover-1@example.org"))]).body
    new = flat(section(body, "New series and revisions"))
    assert "partial: 2 of 6 patches reached this list; the cover <cover-1@example.org>" in new
    assert "partial:" not in flat(section(later([item()]).body, "New series and revisions"))


def test_new_conflicts_since_the_last_digest_name_the_other_series_and_files():
    old = d.ConflictNote("mm: old clash", 2, "o@x", ("mm/memory.c",), 1, new_in_period=False)
    new = d.ConflictNote("KVM: Mapping guest_memfd", 8, "m@x", ("virt/kvm/guest_memfd.c", "a.c", "b.c", "c.c"), 3,
                         new_in_period=True)
    body = later([item(conflicts=(old, new))]).body
    text = flat(section(body, "New conflicts since the last digest"))
    assert '"KVM: Mapping guest_memfd" v8 (virt/kvm/guest_memfd.c, a.c, b.c and 1 more files; 3 hunks)' in text
    assert "mm: old clash" not in text
    first = d.compose(subscription(), [item(conflicts=(old,))], WEEK, True, BASE, NOW).body
    assert '"mm: old clash" v2 (mm/memory.c; 1 hunk)' in flat(section(first, "Conflicts in flight"))
    assert "conflicts" not in later([item()]).body.lower()
