"""The ingest/series CLI contract, run as real processes (JSON on stdout, errors on stderr)."""
import gzip
import json
import os
import subprocess
import sys

import pytest
from django.db import connection

from tests.conftest import REPO, _database_url

KEYS = {"msgid", "subject", "version", "expected", "received", "complete", "missing",
        "base_commit", "change_id", "author", "previous", "list"}


@pytest.fixture
def manage(transactional_db, settings):
    env = dict(os.environ, DATABASE_URL=_database_url(connection.settings_dict),
               REVIEWAPP_DATA_DIR=str(settings.DATA_DIR))

    def run(*args, check=True):
        proc = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc
    return run


@pytest.fixture(autouse=True)
def _data(data_dir):
    return data_dir


def test_ingest_json_prints_the_readme_facts(manage, lore_dir):
    out = json.loads(manage("ingest", "--mbox", str(lore_dir / "kvm-gmem-uffd-minor-v2.mbox"),
                            str(lore_dir / "kvm-gmem-uffd-minor-v3.mbox"), "--json").stdout)
    by = {r["msgid"]: r for r in out["series"]}
    v3 = by["20250404154352.23078-1-kalyazin@amazon.com"]
    assert set(v3) == KEYS
    assert v3 == {"msgid": "20250404154352.23078-1-kalyazin@amazon.com",
                  "subject": "KVM: guest_memfd: support for uffd minor", "version": 3, "expected": 6,
                  "received": 6, "complete": True, "missing": [],
                  "base_commit": "3cc51efc17a2c41a480eed36b31c1773936717e0", "change_id": None,
                  "author": "Nikita Kalyazin <kalyazin@amazon.com>",
                  "previous": "20250402160721.97596-1-kalyazin@amazon.com",
                  "list": "linux-kselftest.vger.kernel.org"}
    assert by["20250402160721.97596-1-kalyazin@amazon.com"]["expected"] == 5


def test_split_send_and_quoted_printable_through_the_cli(manage, lore_dir):
    out = json.loads(manage("ingest", "--mbox", str(lore_dir / "gmem-direct-map-removal-v7-split-send.mbox"),
                            str(lore_dir / "gmem-direct-map-removal-v8-qp.mbox"), "--json").stdout)
    by = {r["version"]: r for r in out["series"]}
    assert (by[7]["expected"], by[7]["received"], by[7]["complete"]) == (12, 12, True)
    assert by[8]["base_commit"] == "e0c26d47def7382d7dbd9cad58bc653aed75737a"
    assert by[8]["author"] == "Kalyazin, Nikita <kalyazin@amazon.co.uk>"  # as the header has it


def test_series_lists_every_revision_known(manage, lore_dir):
    manage("ingest", "--mbox", str(lore_dir / "transcribed" / "fuad-v7-cover.eml"),
           str(lore_dir / "gmem-direct-map-removal-v4.mbox"))
    out = json.loads(manage("series", "--json").stdout)
    fuad = next(r for r in out["series"] if r["msgid"] == "20250318161823.4005529-1-tabba@google.com")
    assert (fuad["expected"], fuad["received"], fuad["complete"], fuad["missing"]) == (9, 0, False, list(range(1, 10)))
    assert fuad["base_commit"] == "4701f33a10702d5fc577c32434eb62adde0a1ae1"
    assert len(out["series"]) == 2


def test_gzip_mbox_is_ingested(manage, lore_dir, tmp_path):
    gz = tmp_path / "t.mbox.gz"
    gz.write_bytes(gzip.compress((lore_dir / "kvm-gmem-uffd-minor-v3.mbox").read_bytes()))
    out = json.loads(manage("ingest", "--mbox", str(gz), "--json").stdout)
    assert out["series"][0]["received"] == 6


def test_bad_input_fails_with_a_clear_error_and_writes_nothing(manage, tmp_path):
    junk = tmp_path / "junk.mbox"
    junk.write_bytes(b"\x00\x01\x02 garbage")
    proc = manage("ingest", "--mbox", str(junk), "--json", check=False)
    assert proc.returncode != 0 and proc.stdout == ""
    assert "not a mail" in proc.stderr
    missing = manage("ingest", "--mbox", str(tmp_path / "nope.mbox"), check=False)
    assert missing.returncode != 0 and "no such file" in missing.stderr
    assert json.loads(manage("series", "--json").stdout) == {"series": []}


def test_a_mail_over_the_size_limit_in_an_mbox_is_quarantined_with_its_real_size(manage, tmp_path):
    from reviewapp.models import QuarantinedMail
    body = b"".join(b"%099d\n" % i for i in range(30_000))  # 3 MB
    big = b"From: a@b.c\nSubject: big\nMessage-ID: <big@ex.org>\n\n" + body
    small = b"From: a@b.c\nSubject: small\nMessage-ID: <small@ex.org>\nDate: Mon, 5 May 2025 10:00:00 +0000\n\nhi\n"
    path = tmp_path / "t.mbox"
    path.write_bytes(b"From x@y Thu Jan  1 00:00:00 1970\n" + big + b"\n"
                     + b"From x@y Thu Jan  1 00:00:00 1970\n" + small)
    env = dict(os.environ, DATABASE_URL=_database_url(connection.settings_dict), REVIEWAPP_MAX_MAIL_BYTES="1048576")
    proc = subprocess.run([sys.executable, "manage.py", "ingest", "--mbox", str(path), "--json"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["counts"]["quarantined"] == 1
    q = QuarantinedMail.objects.get()
    assert f"mail of {len(big) + 1} bytes is over the limit of 1048576" in q.reason
    assert len(bytes(q.raw)) <= 1048577
