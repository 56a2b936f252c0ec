"""Review comments and objections, hand-classed on real replies of the kselftest archive.

Each label below is what a reviewer reading the raw mail would call it: a review comment
(it answers the diff with words of its own), an objection (a NAK, a bug, build or
regression report, a bot's report) or other (the author's answer, an applied notice, a
bare trailer, talk without the diff). docs/review.md counts the heuristics' hits and
misses on this set and says why each miss happens.
"""
from __future__ import annotations

import email
import email.policy
import re

import pytest

from tests.support.shared import KSELFTEST_ARCHIVE, require
from untangle import mail as mails, replies as rp
from untangle.mbox import messages_from_path

C, O, X = rp.COMMENT, rp.OBJECTION, rp.OTHER
HAND_CLASSED = {
    # bots' build reports
    "202010270642.JTduN4Xy-lkp@intel.com": O,
    "201910140347.fy4EKE69%lkp@intel.com": O,
    "202104300902.XgyYInj5-lkp@intel.com": O,
    "202108240612.SioeBq9N-lkp@intel.com": O,
    "202110011150.VomnbdmO-lkp@intel.com": O,
    "CA+G9fYtqga+zMop8Ae3+fa1ENP2T8fwfFfwWmvfRWZSYB7cPDw@mail.gmail.com": O,  # LKFT build errors
    # people reporting problems
    "20190504001756.17fad840@oasis.local.home": X,  # the RFC's author: "I tried this, and it crashed"
    "d6bc5c4b-68b5-0a58-0f52-8bce20986dcf@arm.com": O,  # the selftest fails to build
    "20190731144332.yjrrwbqvl7lmudiz@kamzik.brq.redhat.com": O,  # fatal error: header not found
    "YO1s+rHEqC9RjMva@kroah.com": O,  # "so NAK, this change isn't ok as-is"
    "1fbf3429-42e5-0959-9a5c-91de80f02b6a@samsung.com": O,  # a regression in linux-next
    "2655bc5d-eac1-7cbe-d3b2-5dc9ad3ffa5e@redhat.com": O,  # the test fails on s390x
    "YbEe3tz95ObwMxoL@sirena.org.uk": O,  # mixer-test.c: error
    "202006261416.F4EAAE47E3@keescook": O,  # "Nack: this must be in INIT_DATA"
    # review comments
    "8f7a5e34-d386-abcd-9926-1bd4cab8aeef@gmail.com": C,
    "YJGUFrc8PJ0LAKiF@google.com": C,
    "87h7b6c44o.ffs@tglx": C,
    "679251da-b701-7a75-bea3-ebe564bc6319@amd.com": C,
    "20190507175342.fskdj2qidpao65qi@treble": C,
    "20190502151320.cvc6uc3b4bmww23k@brauner.io": C,
    "202009111550.07017FE49@keescook": C,

    "YQsjQ5aJokV1HZ8N@google.com": C,  # API naming on an RFC, quoting the thread, not the diff
    "202108272314.403830F980@keescook": C,  # TAP format discussion
    "a5829cb4-3759-6cd8-c9de-62e9813f00d6@iogearbox.net": C,
    "20190523174345.6sv3kcipkvlwfmox@mbp": C,
    "202012011315.E71F0B6B@keescook": C,
    "bf016b30-18e6-69fd-afc5-5319ebd6a890@linuxfoundation.org": C,
    "20201104121631.wvodsw7agsrdhje4@kamzik.brq.redhat.com": C,
    "20191211104236.GM1551@quack2.suse.cz": C,
    "CAEf4Bzap=EHCRXwePxU+sW94DGFFOLqBnwtJyqhnFJ+s86D4qQ@mail.gmail.com": C,
    # neither
    "20190510104338.GB6889@mit.edu": X,  # design debate on the cover, no diff
    "20201019202647.GD3713473@iweiny-DESK2.sc.intel.com": X,  # the author answering
    "07589a71-3984-b2a6-b24b-6b9a23e1b60d@nvidia.com": X,  # the author answering
    "77f3c7a1-bfb0-d6ff-67e1-1854e390016e@linux.ibm.com": X,  # the author answering
    "YWSiIwr/8/JQE9qW@bombadil.infradead.org": X,  # the author answering
    "160573043243.16719.8325434404074128015.pr-tracker-bot@kernel.org": X,  # merged notice
    "8402b29a-6be4-b123-eb14-80b3fa8d8080@redhat.com": X,  # "Queued, thanks."
    "163849740916.2738.7046909132205232442.git-patchwork-notify@kernel.org": X,
    "20190806175055.pazfyeyhbdbmuh6l@brauner.io": X,  # Applied-to:
    "159961731707.5787.13988542229153933257.b4-ty@oracle.com": X,
    "20200714.150626.477183558154470216.davem@davemloft.net": X,  # "Applied, thank you."
    "CAFd5g45NobSVOFAN8PJrWKDgqjJDJh15x5WByf+0FV+yFa2zEA@mail.gmail.com": X,  # a bare Reviewed-by
    "871raybos4.fsf@mpe.ellerman.id.au": X,  # a bare Acked-by
    "20210618090732.szt3bh5s7yfemewe@kernel.org": X,  # "OK, great, thank you!"
    "CAC_TJvcZ4ndpQpsj4ANj9LpzSu6GfPSdxpVc0XShbi9u_bSUyw@mail.gmail.com": X,  # the author on his own patch
}
# Where the named heuristics and a reader disagree (each explained in docs/review.md).
KNOWN_MISSES = {
    "YQsjQ5aJokV1HZ8N@google.com",  # review in words without quoting the diff: "other"
    "202108272314.403830F980@keescook",  # a quoted code line starts "NAK:": an objection
    "a5829cb4-3759-6cd8-c9de-62e9813f00d6@iogearbox.net",  # "a compilation error" he throws on purpose
    "20190510104338.GB6889@mit.edu",  # "if the test code ever ... triggers a lockdep warning"
    "87h7b6c44o.ffs@tglx",  # answers the commit message, quotes no diff: "other"
}
_ID = re.compile(r"<([^<>\s]+)>")


@pytest.fixture(scope="module")
def real_replies():
    """Each hand-classed reply parsed as ingest parses it, with the sender of the patch or
    cover it answers (its author's own answers are never comments or objections)."""
    wanted, heads, found = set(HAND_CLASSED), {}, {}
    for raw in messages_from_path(require(KSELFTEST_ARCHIVE)):
        head = email.message_from_bytes(raw.split(b"\n\n", 1)[0] + b"\n\n", policy=email.policy.compat32)
        mid = (_ID.findall(str(head["Message-ID"] or "")) or [""])[0]
        parent = (_ID.findall(str(head["In-Reply-To"] or "")) or _ID.findall(str(head["References"] or ""))[-1:]
                  or [None])[0]
        heads[mid] = (parent, str(head["Subject"] or ""), raw)
        if mid in wanted:
            found[mid] = raw
    return {mid: (mails.parse(raw), _answered_author(mid, heads)) for mid, raw in found.items()}


def _answered_author(mid: str, heads: dict) -> str:
    for _ in range(100):
        parent = heads[mid][0]
        if parent not in heads:
            return ""
        mid = parent
        if not re.match(r"(?i)\s*(re|aw):", heads[mid][1]):
            return mails.parse(heads[mid][2]).from_email
    return ""


def test_every_hand_classed_reply_is_in_the_archive(real_replies):
    assert sorted(set(HAND_CLASSED) - set(real_replies)) == []


def test_the_heuristics_class_real_replies_as_a_reader_does_but_for_the_known_misses(real_replies):
    verdicts = {mid: rp.classify(m.body, m.from_email, author) for mid, (m, author) in real_replies.items()}
    misses = {mid for mid, v in verdicts.items() if v.kind != HAND_CLASSED[mid]}
    assert misses == KNOWN_MISSES, {m: (HAND_CLASSED[m], verdicts[m]) for m in misses ^ KNOWN_MISSES}
    assert len(HAND_CLASSED) >= 30 and len(misses) / len(HAND_CLASSED) <= 0.15


def test_every_verdict_names_the_rule_that_fired(real_replies):
    for mid, (m, author) in real_replies.items():
        assert rp.classify(m.body, m.from_email, author).reason
