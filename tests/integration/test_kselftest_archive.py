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


@pytest.fixture(scope="module")
def raws():
    return _threads("20191219105533.12508-1-cyphar@cyphar.com",
                    "3d0e22cc-af15-c142-1ee9-6f3c18a10557@linuxfoundation.org",
                    "1562837513-745-1-git-send-email-p.pisati@gmail.com",
                    "1562838037-1884-1-git-send-email-p.pisati@gmail.com",
                    "cover.1579507768.git.sandipan@linux.ibm.com")


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
