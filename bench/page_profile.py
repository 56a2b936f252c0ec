"""Where a page's time goes: N GETs per page kind through Django's test client, in-process,
with the SQL time per page (issue 11.2; run after bench/load_bench.py --data-only).

  DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_load REVIEWAPP_VAR_DIR=var/bench \
      .venv/bin/python bench/page_profile.py [--n 50] [--kind series] [--top 25]

Prints, per kind: mean wall ms, mean SQL ms and queries per request, then (with --top, under cProfile) the
functions with the most cumulative time over all its requests.
"""
import argparse
import cProfile
import os
import pstats
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")


def sample(n: int) -> dict:
    """Revisions with a stored graph, and a tree file of an applied chain (as load_bench prepares)."""
    from reviewapp.models import ApplyRun, GraphSnapshot
    revs = list(GraphSnapshot.objects.values_list("root__msgid", flat=True).distinct()[:n])
    run = ApplyRun.objects.filter(status="applied").order_by("-id").first()
    return {"revs": revs, "file": f"/tree/{run.id}/mm/userfaultfd.c" if run else None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--kind", choices=("list", "series", "graph", "file", "review"), action="append")
    ap.add_argument("--top", type=int, default=0)
    args = ap.parse_args()
    import django
    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from load_bench import urls
    ctx = sample(60)
    client = Client()
    rng = random.Random(2)
    for kind in args.kind or ("list", "series", "graph", "file"):
        if kind == "file" and not ctx["file"]:
            continue
        chosen = [urls(kind, ctx, rng) for _ in range(args.n)]
        for url in chosen[:5]:
            client.get(url)  # warm caches and imports
        prof, wall, sql, queries = cProfile.Profile(), 0.0, 0.0, 0
        per_url: dict[str, list[float]] = {}
        for url in chosen:
            with CaptureQueriesContext(connection) as captured:
                t = time.perf_counter()
                if args.top:
                    prof.enable()
                response = client.get(url)
                if args.top:
                    prof.disable()
                took = time.perf_counter() - t
                wall += took
                per_url.setdefault(url.split("page=")[0], []).append(took)
            assert response.status_code == 200, (url, response.status_code)
            queries += len(captured.captured_queries)
            sql += sum(float(q["time"]) for q in captured.captured_queries)
        n = len(chosen)
        print(f"{kind}: {wall / n * 1000:.1f} ms a request, SQL {sql / n * 1000:.1f} ms in {queries / n:.1f} queries")
        for url, times in sorted(per_url.items(), key=lambda kv: -max(kv[1])):
            print(f"  {url}: mean {sum(times) / len(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms, n={len(times)}")
        if args.top:
            pstats.Stats(prof).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
