"""Benchmark of the uffd-kernel suite on Debian's linux-source-6.1 (docs/kernel-suite.md).

Builds the tree's own kernel (tinyconfig + untangle/kconfig/uffd.config) with ccache,
its headers and vm/userfaultfd selftest, boots it under QEMU (TCG) and runs the tests;
then again after a one-patch change to mm/userfaultfd.c (ccache reuse). Prints JSON
with the step timings of each run.

    .venv/bin/python bench/kernel_bench.py [SRC_DIR] [--cold]

SRC_DIR defaults to var/kbench/linux-source-6.1 (unpacked from the .deb that
scripts/make-kernel-tree downloads). The cache is var/kernel-cache, shared with the tests and the app.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from untangle.suite import UFFD_KERNEL_SUITE, run_suite  # noqa: E402

WORK = ROOT / "var" / "kbench"


def one(tree: Path, label: str, cache: Path) -> dict:
    started = time.monotonic()
    result = run_suite(tree, UFFD_KERNEL_SUITE, Path("/nonexistent"), WORK / "work",
                       progress=lambda step, status: print(f"[{label}] {step}: {status}",
                                                           file=sys.stderr, flush=True),
                       kernel_cache=cache, kernel_key=None)
    (WORK / f"{label}.log").write_text(result.log)
    return {"label": label, "status": result.status, "wall_s": round(time.monotonic() - started, 1),
            "steps": {s.name: s.duration_s for s in result.steps},
            "compile_s": result.artifacts.compile_s,
            "compiled_lines": result.artifacts.compiled_lines,
            "problems": list(result.problems[:5]), "load_avg": os.getloadavg(),
            "tests": [(t.name, t.result) for t in result.tests]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", nargs="?", type=Path, default=WORK / "linux-source-6.1")
    parser.add_argument("--cold", action="store_true",
                        help="start from an empty ccache (var/kbench/cold-cache, removed first)")
    args = parser.parse_args()
    cache = ROOT / "var" / "kernel-cache"
    if args.cold:
        cache = WORK / "cold-cache"
        shutil.rmtree(cache, ignore_errors=True)
    print(json.dumps(one(args.src, "first", cache)), flush=True)
    changed = WORK / "changed"
    shutil.rmtree(changed, ignore_errors=True)
    shutil.copytree(args.src, changed, symlinks=True)
    target = changed / "mm" / "userfaultfd.c"
    target.write_text(target.read_text().replace(
        "static __always_inline", "/* one-patch change */\nstatic __always_inline", 1))
    print(json.dumps(one(changed, "one-patch", cache)), flush=True)


if __name__ == "__main__":
    main()
