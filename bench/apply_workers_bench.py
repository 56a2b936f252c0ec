"""Apply throughput with 1, 2 and 3 apply workers (issue 22): 100 chain applies queued at
once, each worker a process with a data directory of its own (a host), sharing only the
database and the broker.

  DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_workers CELERY_BROKER_URL=redis://127.0.0.1:6379/0 \\
      .venv/bin/python bench/apply_workers_bench.py [--applies 100] [--workers 1 2 3]

The tree: var/bench/linux.git (scripts/make-kernel-tree, ~80k files); the series: the
made-up ones of bench/inflight_bench.py (1-3 one-line patches on real files). Each host
makes its own mirror first, borrowing the local copy's objects (REVIEWAPP_GIT_REFERENCES),
timed apart; then the applies are requested and timed until the last one has finished.
The database is flushed before each round (PostgreSQL: the named database).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")

from inflight_bench import LIST, TREE, make_series  # noqa: E402


def _start_worker(data_dir: Path, prefix: str, log: Path, env: dict) -> subprocess.Popen:
    e = dict(env, REVIEWAPP_DATA_DIR=str(data_dir), REVIEWAPP_QUEUE_PREFIX=prefix,
             REVIEWAPP_GIT_REFERENCES=str(TREE), REVIEWAPP_SUITE_AFTER_APPLY="0")
    proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "worker", "worker", "-Q", prefix + "apply",
                             "--pool", "solo", "-n", f"{data_dir.name}@%h", "--loglevel", "WARNING",
                             "--without-gossip", "--without-mingle", "--without-heartbeat"],
                            cwd=REPO, env=e, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    return proc


def _round(n_workers: int, applies: int, tmp: Path, series) -> dict:
    from django.core.management import call_command
    from django.db import transaction

    from reviewapp.models import ApplyRun, Revision
    from reviewapp.services import apply, trees
    from reviewapp.services.ingest import ingest
    call_command("flush", interactive=False, verbosity=0)
    ingest([m for s in series for m in s], LIST, workers=0)
    tree = trees.register_tree(LIST, str(TREE))
    prefix = os.environ["REVIEWAPP_QUEUE_PREFIX"]  # this bench's queues (set before Django started)
    env = dict(os.environ)
    hosts = [tmp / f"r{n_workers}-host{i}" for i in range(n_workers)]
    mirror_s = []
    for h in hosts:  # each host's own mirror, as `manage.py tree local` makes it at a host's start
        t = time.monotonic()
        subprocess.run([sys.executable, "manage.py", "tree", "local", LIST], cwd=REPO, check=True,
                       env=dict(env, REVIEWAPP_DATA_DIR=str(h), REVIEWAPP_GIT_REFERENCES=str(TREE)),
                       capture_output=True)
        mirror_s.append(time.monotonic() - t)
    procs = [_start_worker(h, prefix, tmp / f"{h.name}.log", env) for h in hosts]
    time.sleep(4)  # workers up (celery start-up, Django set-up)
    revs = list(Revision.objects.filter(mailing_list__name=LIST).order_by("id")[:applies])
    t = time.monotonic()
    with transaction.atomic():
        ids = [apply.request_apply(r, tree).id for r in revs]
    while ApplyRun.objects.filter(id__in=ids, status__in=["queued", "running"]).exists():
        time.sleep(0.05)
    seconds = time.monotonic() - t
    statuses = {}
    for s in ApplyRun.objects.filter(id__in=ids).values_list("status", flat=True):
        statuses[s] = statuses.get(s, 0) + 1
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=30)
    return {"workers": n_workers, "applies": len(ids), "seconds": round(seconds, 2),
            "per_s": round(len(ids) / seconds, 1), "statuses": statuses,
            "mirror_s": round(max(mirror_s), 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--applies", type=int, default=100)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    if not (TREE / "HEAD").exists():
        raise SystemExit(f"no kernel tree at {TREE}: run scripts/make-kernel-tree")
    with tempfile.TemporaryDirectory(prefix="apply-workers-") as t:
        tmp = Path(t)
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
        os.environ["REVIEWAPP_DATA_DIR"] = str(tmp / "bench-process")
        os.environ["REVIEWAPP_QUEUE_PREFIX"] = f"bench-{uuid.uuid4().hex[:6]}-"
        import django
        django.setup()
        from django.core.management import call_command
        from django.db import connection
        call_command("migrate", verbosity=0)
        series = make_series(args.applies, 0.1, args.seed)
        rows = [_round(n, args.applies, tmp, series) for n in args.workers]
        print(f"{connection.vendor}, broker {os.environ.get('CELERY_BROKER_URL', 'filesystem://')}, "
              f"{os.cpu_count()} cores")
        print(f"{'workers':>7} {'applies':>7} {'seconds':>8} {'applies/s':>9} {'mirror/host s':>13}  statuses")
        for r in rows:
            print(f"{r['workers']:>7} {r['applies']:>7} {r['seconds']:>8} {r['per_s']:>9} {r['mirror_s']:>13}  "
                  f"{r['statuses']}")


if __name__ == "__main__":
    main()
