"""Slices of the real kselftest archive (mboxrd, oldest first) as mbox files to import."""
from __future__ import annotations

import gzip
from pathlib import Path

from tests.support.shared import KSELFTEST_ARCHIVE, require


def write_slice(dst: Path, start: int, count: int, archive: Path = KSELFTEST_ARCHIVE) -> Path:
    """Write mails [start, start+count) of the archive to *dst* (mboxrd, separators kept)."""
    seen = -1
    with gzip.open(require(archive), "rb") as src, open(dst, "wb") as out:
        for line in src:
            if line.startswith(b"From "):
                seen += 1
                if seen >= start + count:
                    break
            if start <= seen < start + count:
                out.write(line)
    if seen < start:
        raise ValueError(f"{archive} has fewer than {start + 1} mails")
    return dst
