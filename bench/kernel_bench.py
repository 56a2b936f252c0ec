"""Benchmark of the uffd-kernel suite on Debian's linux-source-6.1 (docs/kernel-suite.md).

Builds the tree's own kernel (tinyconfig + untangle/kconfig/uffd.config) with ccache,
its headers and vm/userfaultfd selftest, boots it under QEMU (TCG) and runs the tests;
then again after a one-patch change to mm/userfaultfd.c (ccache reuse). Prints JSON
with the step timings of each run.

    .venv/bin/python bench/kernel_bench.py [SRC_DIR]

SRC_DIR defaults to var/kbench/linux-source-6.1 (unpacked from the .deb that
scripts/make-kernel-tree downloads). The cache is var/kernel-cache, shared with the tests and the app.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from untangle.suite import UFFD_KERNEL_SUITE, run_suite  # noqa: E402

WORK = ROOT / "var" / "kbench"


def one(tree: Path, label: str, key: str | None) -> dict:
    started = time.monotonic()
    result = run_suite(tree, UFFD_KERNEL_SUITE, Path("/nonexistent"), WORK / "work",
                       progress=lambda step, status: print(f"[{label}] {step}: {status}",
                                                           file=sys.stderr, flush=True),
                       kernel_cache=ROOT / "var" / "kernel-cache", kernel_key=key)
    (WORK / f"{label}.log").write_text(result["log"])
    return {"label": label, "status": result["status"], "wall_s": round(time.monotonic() - started, 1),
            "steps": result["steps"], "problems": result["problems"][:5],
            "artifacts": result.get("artifacts"),
            "tests": [(t["name"], t["result"]) for t in result["tests"]]}


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else WORK / "linux-source-6.1"
    runs = [one(src, "first", None)]
    print(json.dumps(runs[-1]), flush=True)
    changed = WORK / "changed"
    if not changed.exists():
        shutil.copytree(src, changed, symlinks=True)
    target = changed / "mm" / "userfaultfd.c"
    target.write_text(target.read_text().replace(
        "static __always_inline", "/* one-patch change */\nstatic __always_inline", 1))
    runs.append(one(changed, "one-patch", None))
    print(json.dumps(runs[-1]), flush=True)


if __name__ == "__main__":
    main()
