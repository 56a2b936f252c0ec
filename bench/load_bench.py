"""Load benchmark of the read pages at archive scale (issue 11.2).

  DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_reads .venv/bin/python bench/load_bench.py \
      [--target 100000] [--clients 20] [--requests 2000]

1. imports the kselftest archive (../shared/archives) once, in-process;
2. replicates what the pages read (series, mails, revisions, patches, files, trailers,
   dependencies) with SQL INSERT ... SELECT, msgids suffixed "~repN" and every foreign key
   pointing inside its copy, until there are --target revisions;
3. stores graphs for the sampled revisions and applies the demo chain (for a tree page);
4. starts gunicorn on 127.0.0.1 and sends --requests GETs from --clients threads over the
   series list (pages and filters), series pages, graph pages, a tree file page and the
   reviewer queues (/review/ with reviewer, path, list and new filters);
5. prints p50/p95/max per page kind, the share of pages served from the page cache, the
   CPU per request of gunicorn, PostgreSQL and the client, and the errors: first for one
   client (--single requests: the service time), then for --clients. Bounded: stops after
   --requests. REVIEWAPP_PAGE_CACHE=0 measures the pages rendered every time,
   REVIEWAPP_CACHE_URL=redis://... a cache shared by the gunicorn workers (as in
   docker-compose.yml), --write-every S a committed write every S seconds.
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
    if Revision.objects.exists():
        return
    t = time.monotonic()
    ingest(messages_from_path(KSELFTEST_ARCHIVE), "linux-kselftest")
    print(f"imported {Revision.objects.count()} revisions in {time.monotonic() - t:.0f} s")
    from reviewapp.services import review
    t = time.monotonic()
    review.recompute(list(Revision.objects.values_list("id", flat=True)))
    print(f"review state of every revision in {time.monotonic() - t:.0f} s")


SUFFIX = "~rep"  # copies' msgids end in "~rep<N>"; real message-ids never contain "~rep"

# What the pages read, copied whole: table -> {foreign key column: table it points at}.
# Every row of a copy gets a fresh id; its foreign keys point inside the same copy.
COPIED = {
    "reviewapp_series": {},
    "reviewapp_message": {"revision_id": "reviewapp_revision"},
    "reviewapp_revision": {"series_id": "reviewapp_series", "cover_id": "reviewapp_message",
                           "previous_id": "reviewapp_revision"},
    "reviewapp_patch": {"revision_id": "reviewapp_revision", "message_id": "reviewapp_message"},
    "reviewapp_patchfile": {"patch_id": "reviewapp_patch"},
    "reviewapp_trailer": {"message_id": "reviewapp_message", "patch_id": "reviewapp_patch",
                          "revision_id": "reviewapp_revision"},
    "reviewapp_dependency": {"source_id": "reviewapp_revision", "target_revision_id": "reviewapp_revision"},
    # Review state (issue 19): the panels and the /review/ queues read these.
    "reviewapp_reviewstate": {"revision_id": "reviewapp_revision", "series_id": "reviewapp_series"},
    "reviewapp_reviewperson": {"revision_id": "reviewapp_revision", "series_id": "reviewapp_series"},
    "reviewapp_reviewqueueentry": {"revision_id": "reviewapp_revision"},
}
BLOB_EXPR = ("CASE WHEN {c} IS NULL OR {c} ~ '^0*$' THEN {c} "
             "ELSE substr(md5({c} || %(s)s), 1, length({c})) END")
# Text columns naming a mail (and blob ids): suffixed in a copy so threads, covers and links stay inside it.
SUFFIXED = {
    "reviewapp_message": {"msgid": "{c} || %(s)s", "in_reply_to": "{c} || %(s)s"},
    "reviewapp_revision": {"msgid": "{c} || %(s)s", "anchor": "{c} || %(s)s"},
    "reviewapp_dependency": {"target": "CASE WHEN target_type = 'msgid' THEN {c} || %(s)s ELSE {c} END",
                             "evidence_msgid": "{c} || %(s)s"},
    # Blob ids differ per copy (same length, zero ids kept): otherwise every copy "produces" the
    # blobs of every other and each graph would gather all 35 copies of a posting.
    "reviewapp_patchfile": {"old_blob": BLOB_EXPR, "new_blob": BLOB_EXPR},
}


def _columns(cur, table: str) -> list[str]:
    from django.db import connection
    return [c.name for c in connection.introspection.get_table_description(cur, table)]


def _copy_once(cur, n: int, base: dict[str, int]) -> None:
    """One copy of every imported row of COPIED, in one transaction (foreign keys are deferred)."""
    for table in COPIED:
        cur.execute(f"DROP TABLE IF EXISTS map_{table}")
        cur.execute(f"CREATE TEMP TABLE map_{table} (old bigint PRIMARY KEY, new bigint)")
        cur.execute(f"INSERT INTO map_{table} SELECT id, nextval(pg_get_serial_sequence('{table}', 'id')) "
                    f"FROM {table} WHERE id <= %s", [base[table]])
    for table, fks in COPIED.items():
        cols = [c for c in _columns(cur, table) if c != "id"]
        exprs = []
        for c in cols:
            q = f't."{c}"'
            if c in fks:
                exprs.append(f"(SELECT new FROM map_{fks[c]} m WHERE m.old = {q})")
            elif c in SUFFIXED.get(table, {}):
                exprs.append(SUFFIXED[table][c].format(c=q))
            else:
                exprs.append(q)
        names = ", ".join(f'"{c}"' for c in cols)
        cur.execute(f"INSERT INTO {table} (id, {names}) "
                    f"SELECT (SELECT new FROM map_{table} m WHERE m.old = t.id), {', '.join(exprs)} "
                    f"FROM {table} t WHERE t.id <= %(max)s",
                    {"s": f"{SUFFIX}{n}", "max": base[table]})


def replicate(target: int) -> None:
    """Copies of the imported archive (series, mails, revisions, patches, files, trailers,
    dependencies) until there are ``target`` revisions; resumable, one transaction per copy."""
    from django.db import connection, transaction
    from reviewapp.models import Revision
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bench_base (tab text PRIMARY KEY, maxid bigint)")
        cur.execute("SELECT count(*) FROM bench_base")
        if cur.fetchone()[0] == 0:
            for table in COPIED:
                cur.execute(f"INSERT INTO bench_base SELECT %s, coalesce(max(id), 0) FROM {table}", [table])
        cur.execute("SELECT tab, maxid FROM bench_base")
        base = dict(cur.fetchall())
    imported = Revision.objects.filter(id__lte=base["reviewapp_revision"]).count()
    t = time.monotonic()
    n = 1
    while Revision.objects.count() < target:
        if not Revision.objects.filter(msgid__endswith=f"{SUFFIX}{n}").exists():
            with transaction.atomic(), connection.cursor() as cur:
                _copy_once(cur, n, base)
            print(f"  copy {n}: {Revision.objects.count()} revisions ({time.monotonic() - t:.0f} s)", flush=True)
        n += 1
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")  # as autovacuum leaves a settled table: index-only scans see all-visible pages
    print(f"{Revision.objects.count()} revisions ({imported} imported, {n - 1} copies) "
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
    ids = list(Revision.objects.exclude(msgid__startswith="stale:")
               .values_list("id", flat=True))
    picked = Revision.objects.filter(id__in=rng.sample(ids, min(sample, len(ids))))
    compute_missing([r.id for r in picked])
    from reviewapp.services import review
    review.recompute(list(Revision.objects.filter(msgid__in=[c[0] for c in demo.DEMO_CHAINS])
                          .values_list("id", flat=True)))
    return {"revs": [r.msgid for r in picked], "file": f"/tree/{run.id}/mm/userfaultfd.c"}


def urls(kind: str, ctx: dict, rng: random.Random) -> str:
    from urllib.parse import quote
    if kind == "list":
        return rng.choice(["/", f"/?page={rng.randint(1, 2000)}", "/?q=selftests+kvm", "/?author=shuah",
                           "/?state=incomplete&version=2", "/?since=2020-01-01&until=2020-06-30"])
    if kind == "review":
        return rng.choice(["/review/", f"/review/?page={rng.randint(1, 60)}", "/review/?reviewer=shuah@kernel.org",
                           "/review/?reviewer=skhan@linuxfoundation.org&new=1", "/review/?path=tools/testing/selftests/kvm/",
                           "/review/?list=linux-kselftest", "/review/?reviewer=keescook@chromium.org&path=tools/"])
    m = quote(rng.choice(ctx["revs"]), safe="@")
    return {"series": f"/series/{m}/", "graph": f"/graph/{m}/", "file": ctx["file"]}[kind]


def load(base: str, ctx: dict, clients: int, total: int) -> dict:
    kinds = ("list", "series", "graph", "file", "review")
    times = {k: [] for k in kinds}
    hits = dict.fromkeys(kinds, 0)
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
            kind = kinds[rng.randrange(len(kinds))]
            url = base + urls(kind, ctx, rng)
            t = time.monotonic()
            try:
                with urllib.request.urlopen(url, timeout=30) as r:
                    r.read()
                    ok = r.status == 200
                    hit = r.headers.get("X-Page-Cache") == "hit"
            except Exception as e:  # noqa: BLE001 — every failure is counted and shown
                ok, errors.append(f"{url}: {e}")
                continue
            with lock:
                times[kind].append(time.monotonic() - t)
                hits[kind] += hit
                if not ok:
                    errors.append(url)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return {"times": times, "hits": hits, "errors": errors, "wall": time.monotonic() - t}


def _proc_cpu() -> dict[str, float]:
    """CPU seconds (user+system) of this machine's processes, by kind: gunicorn, postgres, rest."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"gunicorn": 0.0, "postgres": 0.0, "client": 0.0, "other": 0.0}
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        cpu = (int(fields[11]) + int(fields[12])) / tick
        kind = ("client" if int(entry.name) == me else "gunicorn" if "gunicorn" in cmd
                else "postgres" if cmd.startswith("postgres") else "other")
        out[kind] += cpu
    return out


def measured(fn, *args) -> dict:
    """fn's result with the CPU seconds each kind of process spent while it ran."""
    before = _proc_cpu()
    result = fn(*args)
    after = _proc_cpu()
    result["cpu"] = {k: after[k] - before[k] for k in before}
    return result


def writer(every: float, stop: threading.Event) -> None:
    """Mail arriving while readers read: a committed write every `every` seconds, which
    moves the page generation (reviewapp.pagecache) and so makes every stored page stale."""
    from django.db import connections
    from reviewapp.models import MailingList
    n = 0
    while not stop.wait(every):
        n += 1
        MailingList.objects.update_or_create(name="bench-writes", defaults={"url": f"write {n}"})
    connections.close_all()


def report(result: dict) -> None:
    print(f"{sum(len(v) for v in result['times'].values())} requests in {result['wall']:.1f} s, "
          f"{len(result['errors'])} errors")
    print("| page | n | from cache | p50 ms | p95 ms | max ms |\n| --- | --- | --- | --- | --- | --- |")
    for kind, ts in result["times"].items():
        if ts:
            ts = sorted(ts)
            p95 = ts[min(len(ts) - 1, int(len(ts) * 0.95))]
            print(f"| {kind} | {len(ts)} | {result['hits'][kind] / len(ts):.0%} | {statistics.median(ts) * 1000:.0f} | {p95 * 1000:.0f} | {ts[-1] * 1000:.0f} |")
    n = sum(len(v) for v in result["times"].values()) or 1
    if "cpu" in result:
        print("CPU ms a request: " + ", ".join(f"{k} {v / n * 1000:.1f}" for k, v in result["cpu"].items())
              + " (other: processes that ended or are not the bench's; exited gunicorn workers are lost)")
    for e in result["errors"][:10]:
        print("error:", e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--data-only", action="store_true", help="import and replicate, then stop")
    ap.add_argument("--single", type=int, default=100, help="requests of the one-client pass first")
    ap.add_argument("--write-every", type=float, default=0,
                    help="seconds between committed writes during the runs (0: none); each one "
                         "makes every stored page stale")
    args = ap.parse_args()
    assert os.environ.get("DATABASE_URL", "").startswith("postgres"), "run on PostgreSQL (DATABASE_URL)"
    setup_django()
    import_archive()
    replicate(args.target)
    if args.data_only:
        return
    ctx = prepare(60)
    from django.db import connections
    connections.close_all()
    stop = threading.Event()
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
        if args.write_every:
            threading.Thread(target=writer, args=(args.write_every, stop), daemon=True).start()
        load(base, ctx, 4, 100)  # warm-up
        print(f"one client, {args.single} requests (service time); load average {os.getloadavg()}")
        report(measured(load, base, ctx, 1, args.single))
        print(f"{args.clients} clients, {args.requests} requests; load average {os.getloadavg()}")
        report(measured(load, base, ctx, args.clients, args.requests))
        print(f"load average after: {os.getloadavg()}")
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
