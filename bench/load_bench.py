"""Load benchmark of the read pages at archive scale (issue 11.2).

  DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_reads .venv/bin/python bench/load_bench.py \
      [--target 100000] [--clients 20] [--requests 2000]

1. imports the kselftest archive (../shared/archives) once, in-process;
2. replicates its revisions with SQL INSERT ... SELECT (msgid and anchor suffixed ".rN",
   same series, list, dates and counts) until there are --target revisions;
3. stores graphs for the sampled revisions and applies the demo chain (for a tree page);
4. starts gunicorn on 127.0.0.1 and sends --requests GETs from --clients threads over the
   series list (pages and filters), series pages, graph pages and a tree file page;
5. prints p50/p95/max per page kind and the errors. Bounded: stops after --requests.
"""
import argparse
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")


def setup_django():
    import django
    django.setup()
    from django.core.management import call_command
    call_command("migrate", verbosity=0)


def import_archive() -> None:
    from reviewapp.models import Revision
    from reviewapp.services.ingest import ingest
    from tests.support.shared import KSELFTEST_ARCHIVE
    from untangle.mbox import messages_from_path
    if Revision.objects.exclude(msgid__contains=".r").exists():
        return
    t = time.monotonic()
    ingest(messages_from_path(KSELFTEST_ARCHIVE), "linux-kselftest")
    print(f"imported {Revision.objects.count()} revisions in {time.monotonic() - t:.0f} s")


COLS = ("series_id, version, rfc, title, title_key, author_name, author_email, mailing_list_id, date, "
        "expected, received, complete, missing, base_commit, change_id, prerequisites, updated")


def replicate(target: int) -> None:
    from django.db import connection
    from reviewapp.models import Revision
    base = Revision.objects.exclude(msgid__contains=".r").count()
    n = 1
    t = time.monotonic()
    while Revision.objects.count() < target:
        if not Revision.objects.filter(msgid__endswith=f".r{n}").exists():
            with connection.cursor() as cur:
                cur.execute(f"INSERT INTO reviewapp_revision (msgid, anchor, {COLS}) "
                            f"SELECT msgid || '.r{n}', anchor || '.r{n}', {COLS} FROM reviewapp_revision "
                            f"WHERE msgid NOT LIKE '%%.r%%'")
        n += 1
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    print(f"{Revision.objects.count()} revisions ({base} imported, copies .r1...r{n - 1}) "
          f"in {time.monotonic() - t:.0f} s")


def prepare(sample: int) -> dict:
    from reviewapp.models import Revision
    from reviewapp.services import demo
    from reviewapp.services.apply import apply
    from reviewapp.services.graph import compute_missing
    demo.load(runs=False)
    from reviewapp.models import Tree
    uffd = Revision.objects.get(msgid=demo.DEMO_CHAINS[0][0])
    run = apply(uffd, Tree.objects.get(name="demo"))
    rng = random.Random(1)
    ids = list(Revision.objects.exclude(msgid__contains=".r").exclude(msgid__startswith="stale:")
               .values_list("id", flat=True))
    picked = Revision.objects.filter(id__in=rng.sample(ids, min(sample, len(ids))))
    compute_missing([r.id for r in picked])
    return {"revs": [r.msgid for r in picked], "file": f"/tree/{run.id}/mm/userfaultfd.c"}


def urls(kind: str, ctx: dict, rng: random.Random) -> str:
    from urllib.parse import quote
    if kind == "list":
        return rng.choice(["/", f"/?page={rng.randint(1, 2000)}", "/?q=selftests+kvm", "/?author=shuah",
                           "/?state=incomplete&version=2", "/?since=2020-01-01&until=2020-06-30"])
    m = quote(rng.choice(ctx["revs"]), safe="@")
    return {"series": f"/series/{m}/", "graph": f"/graph/{m}/", "file": ctx["file"]}[kind]


def load(base: str, ctx: dict, clients: int, total: int) -> dict:
    kinds = ("list", "series", "graph", "file")
    times = {k: [] for k in kinds}
    errors = []
    lock = threading.Lock()
    left = [total]

    def client(seed):
        rng = random.Random(seed)
        while True:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            kind = kinds[rng.randrange(4)]
            url = base + urls(kind, ctx, rng)
            t = time.monotonic()
            try:
                with urllib.request.urlopen(url, timeout=30) as r:
                    r.read()
                    ok = r.status == 200
            except Exception as e:  # noqa: BLE001 — every failure is counted and shown
                ok, errors.append(f"{url}: {e}")
                continue
            with lock:
                times[kind].append(time.monotonic() - t)
                if not ok:
                    errors.append(url)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return {"times": times, "errors": errors, "wall": time.monotonic() - t}


def report(result: dict) -> None:
    print(f"{sum(len(v) for v in result['times'].values())} requests in {result['wall']:.1f} s, "
          f"{len(result['errors'])} errors")
    print("| page | n | p50 ms | p95 ms | max ms |\n| --- | --- | --- | --- | --- |")
    for kind, ts in result["times"].items():
        if ts:
            ts = sorted(ts)
            p95 = ts[min(len(ts) - 1, int(len(ts) * 0.95))]
            print(f"| {kind} | {len(ts)} | {statistics.median(ts) * 1000:.0f} | {p95 * 1000:.0f} | {ts[-1] * 1000:.0f} |")
    for e in result["errors"][:10]:
        print("error:", e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--port", type=int, default=8765)
    args = ap.parse_args()
    assert os.environ.get("DATABASE_URL", "").startswith("postgres"), "run on PostgreSQL (DATABASE_URL)"
    setup_django()
    import_archive()
    replicate(args.target)
    ctx = prepare(60)
    from django.db import connections
    connections.close_all()
    server = subprocess.Popen([str(REPO / ".venv/bin/gunicorn"), "reviewapp.wsgi", "-b", f"127.0.0.1:{args.port}",
                               "-w", str(args.workers), "--log-level", "warning"], cwd=REPO)
    try:
        base = f"http://127.0.0.1:{args.port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2).read()
                break
            except OSError:
                time.sleep(0.3)
        load(base, ctx, 4, 100)  # warm-up
        print(f"load: {os.getloadavg()}")
        report(load(base, ctx, args.clients, args.requests))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
