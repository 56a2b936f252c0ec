"""Peak RSS of one task fed hostile input, each in a fresh child process.

    .venv/bin/python bench/hostile_bench.py [--inflated-mb 2048]

Cases: a gzip bomb answered by a local archive (LORE_URL) under the default
fetch cap, the same bomb as a .gz file on disk under a 64 MB cap, a
GIT binary patch bomb under the default binary cap, and one patch changing
5,000 files (base guessed over 1,000 commits, then applied; --many-files F C). Each child prints its
ru_maxrss; a flat figure (independent of --inflated-mb) is the point.
Results: docs/reliability.md.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def bomb(inflated_mb: int) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [comp.compress(b"From: a@x\nMessage-ID: <b@x>\n\n")]
    block = b"\0" * (1 << 20)
    out += [comp.compress(block) for _ in range(inflated_mb)]
    out.append(comp.flush())
    return b"".join(out)


def case_fetch(inflated_mb: int) -> str:
    from tests.integration.test_hostile_lore import Server, bomb_answer
    from untangle import lore
    srv = Server(bomb_answer(bomb(inflated_mb)))
    try:
        lore.fetch_thread("b@x", srv.url, limits=lore.FetchLimits())
    except lore.FetchError as exc:
        return str(exc)
    finally:
        srv.close()
    return "fetched"


def case_disk(inflated_mb: int) -> str:
    from untangle import mbox
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bomb.mbox.gz"
        path.write_bytes(bomb(inflated_mb).replace(b"From: a@x", b"From: a@x", 1))
        try:
            for _ in mbox.messages_from_path(path, max_inflated=64 << 20):
                pass
        except mbox.MboxError as exc:
            return str(exc)
    return "read"


def case_binary(inflated_mb: int) -> str:
    import base64
    from untangle.gitrepo_patch import PatchError, parse_diff
    comp = zlib.compressobj(9)
    block = b"\0" * (1 << 20)
    deflated = b"".join([comp.compress(block) for _ in range(inflated_mb)] + [comp.flush()])
    lines = []
    for i in range(0, len(deflated), 52):
        chunk = deflated[i:i + 52]
        n = len(chunk)
        lines.append((chr(64 + n) if n <= 26 else chr(70 + n)) + base64.b85encode(chunk + b"\0" * (-n % 4)).decode())
    diff = ("diff --git a/b b/b\nnew file mode 100644\nindex 0000000..1111111\nGIT binary patch\n"
            "literal 10\n" + "\n".join(lines) + "\n\n")
    del deflated, lines
    try:
        parse_diff(diff)
    except PatchError as exc:
        return str(exc)
    return "parsed"


def many_files(files: int = 5000, commits: int = 1000) -> None:
    """A patch changing `files` files: base guessed over `commits` non-matching commits,
    then applied (git layer, fresh process; figures in docs/reliability.md)."""
    out = subprocess.run([sys.executable, "-m", "tests.support.many_files", str(files), str(commits)],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    print(json.dumps({"case": "many-files", **json.loads(out)}))


def child(case: str, inflated_mb: int) -> None:
    started = time.monotonic()
    outcome = globals()[f"case_{case}"](inflated_mb)
    print(json.dumps({"case": case, "inflated_mb": inflated_mb, "outcome": outcome[-90:],
                      "seconds": round(time.monotonic() - started, 2),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--inflated-mb", type=int, nargs="+", default=[512, 2048])
    ap.add_argument("--child", nargs=2)
    ap.add_argument("--many-files", type=int, nargs=2, metavar=("FILES", "COMMITS"),
                    help="only the many-files apply case")
    args = ap.parse_args()
    if args.child:
        return child(args.child[0], int(args.child[1]))
    if args.many_files:
        return many_files(*args.many_files)
    for mb in args.inflated_mb:
        for case in ("fetch", "disk", "binary"):
            subprocess.run([sys.executable, __file__, "--child", case, str(mb)], check=True)
    many_files()


if __name__ == "__main__":
    main()
