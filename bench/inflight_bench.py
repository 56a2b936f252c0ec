"""Series in flight on a kernel-sized tree (issue 21): N open series applied, compared
pairwise where they share files, and stacked into the integration branch.

  .venv/bin/python bench/inflight_bench.py [--series 300] [--shared 0.1] [--seed 1]
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_inflight .venv/bin/python bench/inflight_bench.py

The tree: var/bench/linux.git (scripts/make-kernel-tree: Debian's linux-source-6.1, ~80k
files). The series: made up but shaped like real ones: 1-3 patches each, every patch
changing one line of a real .c/.h file of the tree (from mm/, fs/, kernel/, drivers/,
net/, include/); a share of them (--shared, default 10%) change one of 6 hot files
(mm/memory.c, include/linux/mm.h, ...), some on the same lines (those conflict). One
author per series, dated within the last 30 days, all on one list.

Measures, cold (fresh database, the tree's mirror made first and not counted):
`manage.py inflight`'s computation (services/inflight.compute): the applies, the pairs,
the merges and the integration branch; then, incrementally, after one series gets a v2:
the same computation again (applies unchanged since the last run are reused).
"""
import argparse
import difflib
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")

TREE = REPO / "var" / "bench" / "linux.git"
LIST = "bench-inflight"
HOT = ["mm/memory.c", "include/linux/mm.h", "mm/userfaultfd.c", "fs/userfaultfd.c", "mm/shmem.c",
       "kernel/fork.c"]
AREAS = ("mm/", "fs/", "kernel/", "drivers/", "net/", "include/")


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(TREE), *args], capture_output=True, text=True, check=True).stdout


def _files(rng: random.Random, n: int) -> list[str]:
    paths = [p for p in _git("ls-tree", "-r", "--name-only", "HEAD").splitlines()
             if p.startswith(AREAS) and p.endswith((".c", ".h"))]
    return rng.sample(paths, n)


def _changed(text: str, line: int, tag: str) -> str:
    lines = text.splitlines(keepends=True)
    lines[line] = f"/* {tag} */\n"
    return "".join(lines)


def _diff(path: str, old: str, new: str) -> str:
    body = "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"a/{path}", f"b/{path}", n=3))
    return f"diff --git a/{path} b/{path}\n{body}"


def make_series(n: int, shared: float, seed: int) -> list[list[bytes]]:
    rng = random.Random(seed)
    from django.utils import timezone
    plain = _files(rng, n * 3)
    texts: dict[str, str] = {}

    def text(path):
        if path not in texts:
            texts[path] = _git("show", f"HEAD:{path}")
        return texts[path]
    out = []
    for k in range(n):
        who = f"Dev {k} <dev{k}@example.org>"
        when = (timezone.now() - timedelta(days=30 * k / n)).strftime("%a, %d %b %Y %H:%M:%S +0000")
        patches = rng.randint(1, 3)
        head = f"inflight-{k}-0@example.org"
        mails = [(f"From: {who}\nSubject: [PATCH 0/{patches}] area: made-up series {k}\nMessage-ID: <{head}>\n"
                  f"Date: {when}\n\nSeries {k}.\n").encode()]
        for i in range(1, patches + 1):
            if rng.random() < shared:
                path = rng.choice(HOT)
                line = 40 + rng.randrange(8) * 7  # a few hot spots: some pairs pick the same line
            else:
                path = plain[k * 3 + i - 1]
                line = rng.randrange(max(1, min(200, len(text(path).splitlines()))))
            old = text(path)
            if not old.strip() or line >= len(old.splitlines()):
                line = 0
            new = _changed(old, line, f"series {k} patch {i}")
            mails.append((f"From: {who}\nSubject: [PATCH {i}/{patches}] area: change {i} of {k}\n"
                          f"Message-ID: <inflight-{k}-{i}@example.org>\nIn-Reply-To: <{head}>\n"
                          f"References: <{head}>\nDate: {when}\n\nChange {i}.\n\nSigned-off-by: {who}\n---\n"
                          f"{_diff(path, old, new)}-- \n2.47.0\n").encode())
        out.append(mails)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=300)
    ap.add_argument("--shared", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", type=int, default=0, help="print the N costliest functions of the incremental run")
    args = ap.parse_args()
    if not (TREE / ".complete").exists() and not (TREE / "HEAD").exists():
        raise SystemExit(f"no kernel tree at {TREE}: run scripts/make-kernel-tree")
    with tempfile.TemporaryDirectory(prefix="inflight-bench-") as tmp:
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
        os.environ["REVIEWAPP_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ["REVIEWAPP_VAR_DIR"] = tmp
        import django
        django.setup()
        from django.core.management import call_command
        call_command("migrate", verbosity=0)
        call_command("flush", interactive=False, verbosity=0)
        from django.db import connection

        from reviewapp.services import inflight, trees
        from reviewapp.services.ingest import ingest
        t = time.monotonic()
        trees.add_tree(LIST, str(TREE))
        print(f"tree mirror made in {time.monotonic() - t:.1f} s (not counted)")
        series = make_series(args.series, args.shared, args.seed)
        ingest([m for s in series for m in s], LIST, workers=0)
        t = time.monotonic()
        cold = inflight.compute(LIST)
        cold_s = time.monotonic() - t
        i = cold.integration
        print(f"{connection.vendor}: {len(cold.open)} open series, "
              f"{sum(1 for o in cold.open if o['apply'] == 'applied')} applied; {cold.compared} pairs share a file, "
              f"{len(cold.conflicts)} conflict; integration branch: {len(i.get('included', []))} stacked, "
              f"{len(i.get('skipped', []))} left out")
        print(f"cold: {cold_s:.1f} s")
        # One series gets a v2 (its patch 1 changed on another line): the incremental update.
        v2 = [m.replace(b"[PATCH ", b"[PATCH v2 ").replace(b"inflight-7-", b"inflight-7v2-")
              for m in series[7]]
        ingest(v2, LIST, workers=0)
        t = time.monotonic()
        if args.profile:
            import cProfile
            import pstats
            prof = cProfile.Profile()
            warm = prof.runcall(inflight.compute, LIST)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(args.profile)
        else:
            warm = inflight.compute(LIST)
        print(f"incremental, after one new revision: {time.monotonic() - t:.1f} s "
              f"({len(warm.open)} open, {len(warm.conflicts)} conflicts)")


if __name__ == "__main__":
    main()
