"""Grouping on real mail: threads of the linux-kselftest archive (2019-2021),
extracted by msgid at test time. Each fact below was read by hand in the
archive (zcat | grep), not taken from the code's output."""
import re

import pytest

from reviewapp.models import Message, QuarantinedMail, Revision
from reviewapp.services.ingest import ingest
from tests.support.shared import KSELFTEST_ARCHIVE, require
from untangle.mbox import messages_from_path

pytestmark = pytest.mark.django_db

_IDS = re.compile(rb"^(?:message-id|in-reply-to|references):[^\n]*(?:\n[ \t][^\n]*)*", re.I | re.M)
_MSGID = re.compile(rb"<([^<>\s]+)>")


def _threads(*roots: str) -> list[bytes]:
    """Every mail of the archive that is, or hangs from, one of these msgids."""
    wanted = {r.encode() for r in roots}
    found = []
    for raw in messages_from_path(require(KSELFTEST_ARCHIVE)):
        head = raw[:raw.find(b"\n\n")]
        if wanted & {i for h in _IDS.findall(head) for i in _MSGID.findall(h)}:
            found.append(raw)
    return found


def _rev(msgid: str) -> Revision:
    return Message.objects.get(msgid=msgid).revision


# Unthreaded runs (no In-Reply-To, no References on any of their mails), read in the archive:
_FRUGGERI = ["20191101233230.CDDD495C0885@us180.sjc.aristanetworks.com",  # net-next 1/2, 16:32:30 -0700
             "20191101233408.BC15495C0902@us180.sjc.aristanetworks.com"]  # net-next 2/2, 16:34:08
_LATYPOV = ["20210421183210.2557462-1-dlatypov@google.com",  # 1/2, 11:32:10 -0700
            "20210421183222.2557747-1-dlatypov@google.com"]  # 2/2, 11:32:22
_ROXELL_V2 = ["20200505102647.7862-1-anders.roxell@linaro.org",  # v2 0/6; only 1/6 and 2/6 reached the list
              "20200505102700.7912-1-anders.roxell@linaro.org",
              "20200505102709.7964-1-anders.roxell@linaro.org"]
_ROXELL_V3 = [f"20200511{t}-1-anders.roxell@linaro.org" for t in (  # v3 0/6 .. 6/6, 15:13:50-15:14:42
    "131350.29638", "131420.29758", "131425.29808", "131429.29856", "131433.29905", "131438.29953",
    "131442.30002")]
# Same sender, same N, seconds apart, but two postings: "[PATCH MANUALSEL 5.4 1/4]" and
# "[PATCH MANUALSEL 4.19 1/4]" (Sasha Levin, 11:37:00 and 11:37:12 -0500).
_SASHA = ["20211123163706.289562-1-sashal@kernel.org", "20211123163715.289631-1-sashal@kernel.org"]
# Anders Roxell 2021-11-05: "[PATCH 1/2] selftests: cgroup" at 17:25:29 (its 2/2 threaded below it)
# and "[PATCH 1/2] selftests: timens" at 17:31:36 (its own 2/2 below it): two series.
_ROXELL_CGROUP = "20211105162530.3307666-1-anders.roxell@linaro.org"
_ROXELL_TIMENS = "20211105163137.3324344-1-anders.roxell@linaro.org"
# Thread roots without "[PATCH 0/N]": by the patches' author (a cover), and by someone else.
_PALMER = "20200128021145.36774-1-palmerdabbelt@google.com"  # "arm64: bpf: Elide ...", [1/4]..[4/4] 1-4 s later
_HOLLENSBE = "20210128033743.77040-1-erik@hollensbe.org"  # "Correct .gitignore ...", one [PATCH] a second later
_GARDNER = "20210429183952.22797-1-tim.gardner@canonical.com"  # "Subject: [PATCH 0/1] SGX ...", one [PATCH]
_CRESTEZ = "cover.1635784253.git.cdleonard@gmail.com"  # "[PATCH v2] tcp: Initial support ...", v2 01/25..25/25
_KAMBOJU = "CA+G9fYusdfg7PMfC9Xce-xLT7NiyKSbgojpK35GOm=Pf9jXXrA@mail.gmail.com"  # a WARNING report
_BRAUNER_FIX = "20200311105309.1742827-1-christian.brauner@ubuntu.com"  # [PATCH] binderfs, replying to it

# Covers labelled otherwise than their patches, all sent in one run a second apart:
# Ben Gardon "[PATCH 0/9]" over "[PATCH v2 1/8]".."[PATCH v2 8/8]" (8/8 twice: -9 and -10);
# Yanan Wang "[RFC PATCH v3 0/7]" over "[RFC PATCH v3 1/8]".."8/8";
# Emanuele Giuseppe Esposito "[PATCH 0/4]" over "[PATCH v2 1/4]".."4/4".
_GARDON = "20191216213532.91237-{}-bgardon@google.com"
_WANG = "20210301065916.11484-{}-wangyanan55@huawei.com"
_ESPOSITO = "20210331122649.38323-{}-eesposit@redhat.com"

# The same run posted again as a new thread: Uriel Guajardo "[PATCH 0/2] KUnit-Kmemleak
# Integration" at 21:03:25 and 21:13:07 (both complete); Yury Norov "[PATCH RESEND 2 00/16]"
# at 11:12:10 (stopped after 02/16) and 11:12:29 (all 16).
_GUAJARDO = ("20200706210327.3313498-1-urielguajardojr@gmail.com", "20200706211309.3314644-1-urielguajardojr@gmail.com")
_NOROV = ("20211001181226.228340-1-yury.norov@gmail.com", "20211001181245.228419-1-yury.norov@gmail.com")

_ROOTS = [*_GUAJARDO, *_NOROV, _GARDON.format(1), _WANG.format(1), _ESPOSITO.format(1), "20191219105533.12508-1-cyphar@cyphar.com",
          "3d0e22cc-af15-c142-1ee9-6f3c18a10557@linuxfoundation.org",
          "1562837513-745-1-git-send-email-p.pisati@gmail.com",
          "1562838037-1884-1-git-send-email-p.pisati@gmail.com",
          "cover.1579507768.git.sandipan@linux.ibm.com",
          *_FRUGGERI, *_LATYPOV, *_ROXELL_V2, *_ROXELL_V3, *_SASHA, _ROXELL_CGROUP, _ROXELL_TIMENS,
          _PALMER, _HOLLENSBE, _GARDNER, _CRESTEZ, _KAMBOJU]


@pytest.fixture(scope="module")
def all_raws():
    return _threads(*_ROOTS)


@pytest.fixture
def raws(all_raws):
    return list(all_raws)


def test_a_series_sent_twice_in_one_run_is_one_revision(raws):
    # Aleksa Sarai, 2019-12-19: -1 cover [0/2], -2 [1/2], -3 [2/2], then -4 [0/2],
    # -5 [1/2], -6 [2/2] again, all in reply to -1.
    ingest(raws, workers=0)
    run = "20191219105533.12508-{}-cyphar@cyphar.com"
    rev = _rev(run.format(1))
    assert {_rev(run.format(i)).id for i in range(1, 7)} == {rev.id}
    assert (rev.expected, rev.received, rev.complete, rev.missing) == (2, 2, True, [])
    assert rev.cover.msgid == run.format(1)


def test_a_series_resent_nine_minutes_later_is_a_second_revision_of_one_family(raws):
    # Paolo Pisati, 2019-07-11 11:31 and 11:40: the same [0/2] cover and two patches, two runs.
    ingest(raws, workers=0)
    first = _rev("1562837513-745-1-git-send-email-p.pisati@gmail.com")
    second = _rev("1562838037-1884-1-git-send-email-p.pisati@gmail.com")
    assert first.id != second.id and first.series_id == second.series_id
    assert (first.received, second.received) == (2, 2)


def test_a_pull_request_without_patches_is_a_cover_only_revision(raws):
    # Shuah Khan's "[GIT PULL] Kselftest update for Linux 5.8-rc2": a pull request, no diff.
    ingest(raws, workers=0)
    rev = _rev("3d0e22cc-af15-c142-1ee9-6f3c18a10557@linuxfoundation.org")
    assert rev.cover.msgid == "3d0e22cc-af15-c142-1ee9-6f3c18a10557@linuxfoundation.org"
    assert rev.received == 0 and rev.author_email == "skhan@linuxfoundation.org"


def test_the_same_message_id_twice_in_the_archive_is_one_mail(raws):
    # Sandipan Das's v17 [0/24] (2020-01-20): the cover, 01/24 and 02/24 are in the
    # archive twice, 29 s apart, with the same msgids.
    result = ingest(raws, workers=0)
    patch1 = "47ac633d2326269960d900bb6cfe1b94bbc52bd3.1579507768.git.sandipan@linux.ibm.com"
    assert Message.objects.filter(msgid=patch1).count() == 1
    assert result.duplicates == 3
    rev = _rev(patch1)
    assert (rev.version, rev.expected, rev.received, rev.complete) == (17, 24, 24, True)
    assert not QuarantinedMail.objects.exists()


@pytest.mark.parametrize("run", [_FRUGGERI, _LATYPOV, _ROXELL_V2, _ROXELL_V3], ids=[
    "fruggeri-net-next-2", "latypov-kunit-2", "roxell-v2-partial", "roxell-v3-6"])
def test_a_series_posted_without_threading_headers_is_one_revision(raws, run):
    ingest(raws, workers=0)
    assert {_rev(msgid).id for msgid in run} == {_rev(run[0]).id}


def test_unthreaded_runs_keep_their_cover_count_and_head(raws):
    ingest(raws, workers=0)
    v3 = _rev(_ROXELL_V3[0])
    assert (v3.cover.msgid, v3.version, v3.expected, v3.received, v3.complete) == (
        _ROXELL_V3[0], 3, 6, 6, True)
    v2 = _rev(_ROXELL_V2[0])
    assert (v2.version, v2.expected, v2.received, v2.missing) == (2, 6, 2, [3, 4, 5, 6])
    # v2 and v3 of "Enable as many KUnit tests as possible": one family, v3 after v2.
    assert v3.series_id == v2.series_id and v3.previous_id == v2.id
    net = _rev(_FRUGGERI[0])
    assert (net.cover, net.msgid, net.expected, net.received, net.complete) == (None, _FRUGGERI[0], 2, 2, True)


def test_an_unthreaded_run_imported_in_two_parts_is_still_one_revision(raws):
    # The cover and 1/6-3/6 in one import, 4/6-6/6 in the next (as two sync runs would).
    first = [r for r in raws if any(m.encode() in r[:4000] for m in _ROXELL_V3[:4])]
    rest = [r for r in raws if any(m.encode() in r[:4000] for m in _ROXELL_V3[4:])]
    ingest(first, workers=0)
    ingest(rest, workers=0)
    rev = _rev(_ROXELL_V3[0])
    assert {_rev(m).id for m in _ROXELL_V3} == {rev.id}
    assert (rev.received, rev.complete) == (6, True)
    assert Revision.objects.filter(messages__msgid__in=_ROXELL_V3).distinct().count() == 1


def test_unthreaded_mails_with_other_prefixes_or_a_repeated_number_stay_apart(raws):
    ingest(raws, workers=0)
    assert _rev(_SASHA[0]).id != _rev(_SASHA[1]).id
    assert _rev(_ROXELL_CGROUP).id != _rev(_ROXELL_TIMENS).id
    assert (_rev(_ROXELL_CGROUP).received, _rev(_ROXELL_TIMENS).received) == (2, 2)


@pytest.mark.parametrize("root, patches, version", [
    (_PALMER, 4, 1), (_HOLLENSBE, 1, 1), (_GARDNER, 1, 1), (_CRESTEZ, 25, 2)],
    ids=["palmer-bpf-4", "hollensbe-gitignore-1", "gardner-sgx-1", "crestez-tcp-authopt-25"])
def test_a_thread_root_written_by_the_patch_author_is_the_cover(raws, root, patches, version):
    ingest(raws, workers=0)
    rev = Revision.objects.get(cover__msgid=root)
    assert (rev.received, rev.complete, rev.version) == (patches, True, version)
    assert rev.patches.count() == patches and Message.objects.get(msgid=root).revision_id == rev.id


def test_a_bug_report_answered_with_a_patch_by_someone_else_is_not_a_cover(raws):
    ingest(raws, workers=0)
    fix = _rev(_BRAUNER_FIX)
    assert fix.cover is None and fix.msgid == _BRAUNER_FIX and fix.received == 1
    assert not Revision.objects.filter(cover__msgid=_KAMBOJU).exists()


@pytest.mark.parametrize("run, mails, version, expected, rfc", [
    (_GARDON, 10, 2, 8, False), (_WANG, 9, 3, 8, True), (_ESPOSITO, 5, 2, 4, False)],
    ids=["gardon-0-9-over-v2-8", "wang-rfc-v3-0-7-over-8", "esposito-0-4-over-v2"])
def test_a_cover_labelled_otherwise_than_its_patches_heads_them(raws, run, mails, version, expected, rfc):
    ingest(raws, workers=0)
    rev = _rev(run.format(1))
    assert {_rev(run.format(i)).id for i in range(1, mails + 1)} == {rev.id}
    assert rev.cover.msgid == run.format(1)
    assert (rev.version, rev.expected, rev.received, rev.complete, rev.rfc) == (version, expected, expected, True, rfc)


@pytest.mark.parametrize("pair, received", [(_GUAJARDO, (2, 2)), (_NOROV, (2, 16))],
                         ids=["guajardo-kmemleak-twice", "norov-bitmap-stopped-then-resent"])
def test_a_run_posted_again_as_a_new_thread_is_the_next_revision_of_its_family(raws, pair, received):
    ingest(raws, workers=0)
    first, second = _rev(pair[0]), _rev(pair[1])
    assert first.id != second.id and first.series_id == second.series_id
    assert (first.received, second.received) == received and second.complete
    assert second.previous_id == first.id
