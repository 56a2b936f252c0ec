"""Hypothesis-generated hostile mails through parse and ingest.

Expected outcomes are a parsed Mail or a MailError (a quarantine with a
reason); anything else is a failure. Counts per run are in
docs/reliability.md (printed at the end of the run by the fixture below).
"""
from __future__ import annotations

import collections
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.mails import diffs_from, file_diff, mail, mails_from, mutations_from
from tests.support.shared import LORE, require
from untangle import mail as mails
from untangle import mbox
from untangle.gitrepo_patch import PatchError, parse_diff

# Scale for a longer local hunt: REVIEWAPP_FUZZ_SCALE=10.
SCALE = float(os.environ.get("REVIEWAPP_FUZZ_SCALE", "1"))
COUNTS: collections.Counter = collections.Counter()
def n(examples: int) -> int:
    return max(1, int(examples * SCALE))


def fuzz(examples: int) -> settings:
    # CI replays the same inputs (a red run is reproducible, never luck); exploring with fresh
    # seeds is REVIEWAPP_FUZZ_RANDOM=1, and what it finds becomes a unit test.
    return settings(max_examples=n(examples), deadline=None, database=None, print_blob=True,
                derandomize=os.environ.get("REVIEWAPP_FUZZ_RANDOM") != "1",
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    print("\nfuzz counts:", dict(COUNTS))


def parse_expecting_mail_or_error(raw: bytes, kind: str) -> None:
    try:
        mails.parse(raw)
        COUNTS[f"{kind} parsed"] += 1
    except mails.MailError:
        COUNTS[f"{kind} refused"] += 1


@fuzz(600)
@given(mail())
def test_generated_mails_parse_or_are_refused_with_a_mail_error(raw):
    parse_expecting_mail_or_error(raw, "generated (shrinkable)")


@fuzz(200)
@given(st.randoms(use_true_random=False))
def test_batches_of_generated_mails_parse_or_are_refused(rnd):
    for raw in mails_from(rnd, 25):
        parse_expecting_mail_or_error(raw, "generated")


_REAL: list[bytes] = []


def real_mails() -> list[bytes]:
    if not _REAL:
        files = sorted(require(LORE).glob("*.mbox")) + sorted((LORE / "transcribed").glob("*"))
        _REAL.extend(r for f in files if f.is_file() for r in mbox.messages_from_path(f))
    return _REAL


@fuzz(150)
@given(st.randoms(use_true_random=False))
def test_mutated_real_mails_parse_or_are_refused_with_a_mail_error(rnd):
    for raw in mutations_from(rnd, real_mails(), 20):
        parse_expecting_mail_or_error(raw, "mutated real")


@fuzz(300)
@given(st.lists(file_diff(), min_size=1, max_size=3))
def test_generated_diffs_parse_or_fail_with_a_patch_error(diffs):
    check_diff("".join(diffs))


@fuzz(100)
@given(st.randoms(use_true_random=False))
def test_batches_of_generated_diffs_parse_or_fail_with_a_patch_error(rnd):
    for diff in diffs_from(rnd, 20):
        check_diff(diff)


def check_diff(diff: str) -> None:
    try:
        parse_diff(diff, max_binary=1 << 16)
        COUNTS["diff parsed"] += 1
    except PatchError:
        COUNTS["diff refused"] += 1


@pytest.mark.django_db
@fuzz(40)
@given(st.randoms(use_true_random=False))
def test_generated_and_mutated_mails_ingest_without_an_unexpected_exception(rnd):
    from reviewapp.services.ingest import ingest
    raws = mails_from(rnd, 20) + mutations_from(rnd, real_mails(), 10)
    result = ingest(raws, workers=0)
    COUNTS["ingested mails"] += len(raws)
    COUNTS["ingest quarantined"] += len(result.errors)
