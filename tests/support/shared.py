"""Where the real data beside the repository lives, and how a test asks for it.

`../shared` (or `$REVIEWAPP_SHARED_DIR`) holds real kernel mail (lore/) and a whole list
archive (archives/). A stranger's clone has neither: tests that read them skip, naming the
path they looked for, so `make test` stays green and the skip says what was not tried.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_ENV = "REVIEWAPP_SHARED_DIR"
SHARED = Path(os.environ.get(SHARED_ENV) or REPO.parent / "shared").resolve()
LORE = SHARED / "lore"
ARCHIVES = SHARED / "archives"
KSELFTEST_ARCHIVE = ARCHIVES / "linux-kselftest-2019-2021.mbox.gz"


def require(path: Path) -> Path:
    """`path`, or skip the calling test with a reason naming it."""
    if not path.exists():
        import pytest

        pytest.skip(f"real data not found at {path} (set {SHARED_ENV} to the folder holding "
                    f"lore/ and archives/)")
    return path
