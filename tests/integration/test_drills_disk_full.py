"""Fault drill: the data dir's disk is full (a 64 MB tmpfs, filled) while a suite runs.

The run ends as an error naming the cause; no scratch dir is left; once space is
back, "run again" gives a verdict.
"""
import subprocess

import pytest

from reviewapp.models import Revision
from reviewapp.services import apply, suites

UFFD_V3 = "20250404132740.18342-1-kalyazin@amazon.com"

pytestmark = pytest.mark.slow


@pytest.fixture
def full_disk(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"this host does not let us mount a tmpfs: {done.stderr.strip()}")
    filler = mnt / "filler"
    try:
        with open(filler, "wb") as f:  # fill it to the last byte
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    except OSError:
        pass
    try:
        yield mnt, filler
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.django_db
def test_a_suite_on_a_full_data_dir_ends_as_error_and_leaves_no_scratch(demo, full_disk, settings, kernel):
    settings.KERNEL_IMAGE = str(kernel)
    settings.SUITE_AFTER_APPLY = False
    applied = apply.apply(Revision.objects.get(msgid=UFFD_V3), demo)
    assert applied.status == "applied", applied.error
    mnt, filler = full_disk
    settings.DATA_DIR = str(mnt)

    run = suites.run(applied)
    assert run.status == "error" and run.lease_until is None
    assert "No space left on device" in " ".join(suites.problems(run)), run.log[-2000:]
    assert suites.scratch_dirs(run.id) == []

    filler.unlink()  # space is back: a new run, a verdict
    again = suites.request_run(applied, force=True)
    assert suites.claim(again.id)
    again = suites.execute(again)
    assert again.status == "pass", again.log[-2000:]
    assert suites.scratch_dirs(again.id) == []
