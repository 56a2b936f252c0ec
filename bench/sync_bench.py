"""Sync of a followed list: time to read and store N new mails from a public-inbox v2 archive.

Real mail: slices of ../shared/archives/linux-kselftest-2019-2021.mbox.gz imported into a
local v2 inbox served by public-inbox-httpd on 127.0.0.1 (tests/support/public_inbox.py).
First the list is synced once with BASE mails; then for each N in --new, N more mails are
delivered and `reviewapp.services.sync.sync_list` is timed (fetch of the epoch mirror,
rev-list, cat-file, ingest, cursor). The CLI (`manage.py sync`, a whole process) is timed
once for 300 new mails too. Results: docs/sync.md.
--graphs: after each sync, what the worker's graph task then does with the revisions it
touched (graph.recompute_after_import), timed beside it: the graph queue keeps up when
that takes less than the sync that fed it. Peak RSS of this process is printed at the end.

    .venv/bin/python bench/sync_bench.py                      # fresh SQLite in a temp dir
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_sync .venv/bin/python bench/sync_bench.py
    (the PostgreSQL database is flushed first)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _setup_django(tmp: Path) -> None:
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp / 'sync.sqlite3'}")
    os.environ["REVIEWAPP_DATA_DIR"] = str(tmp / "data")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    import django
    from django.core.management import call_command
    django.setup()
    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", type=int, default=1000, help="mails synced before measuring")
    ap.add_argument("--new", type=int, nargs="+", default=[30, 100, 300, 1000])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--graphs", action="store_true", help="time the graphs each sync touched, too")
    ap.add_argument("--no-cli", action="store_true", help="skip the manage.py sync run")
    ap.add_argument("--profile", type=Path, help="cProfile the last batch's graphs into this pstats file")
    args = ap.parse_args()
    from tests.support.archive_slice import write_slice
    from tests.support.public_inbox import serve_inbox
    with tempfile.TemporaryDirectory(prefix="sync-bench-") as t:
        tmp = Path(t)
        _setup_django(tmp)
        from django.db import connection
        from reviewapp.services import sync
        rows = []
        with serve_inbox([write_slice(tmp / "base.mbox", 0, args.base)], tmp, name="ks") as inbox:
            sync.register("ks", inbox.url)
            rows.append(_timed("initial", args.base, lambda: sync.sync_list("ks"), args.graphs))
            offset = args.base
            for i, n in enumerate(args.new):
                inbox.add(write_slice(tmp / f"new{i}-{n}.mbox", offset, n))
                offset += n
                last = i == len(args.new) - 1
                rows.append(_timed("service", n, lambda: sync.sync_list("ks"), args.graphs,
                                   args.profile if last else None))
            if args.no_cli:
                return _report(connection.vendor, args, rows)
            inbox.add(write_slice(tmp / "cli.mbox", offset, 300))
            env = dict(os.environ)
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "manage.py", "sync", "ks", "--json"], cwd=REPO, env=env,
                                 capture_output=True, check=True)
            got = json.loads(out.stdout)
            rows.append({"mode": "cli", "new": 300, "read": got["read"], "stored": got["stored"],
                         "seconds": round(time.perf_counter() - start, 3)})
        return _report(connection.vendor, args, rows)


def _report(vendor: str, args, rows: list[dict]) -> int:
    import resource
    result = {"database": vendor, "base": args.base, "rows": rows,
              "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    print(json.dumps(result, indent=1))
    print(f"\n{'mode':8} {'new':>5} {'read':>5} {'stored':>6} {'s':>7} {'mails/s':>8} {'graphs':>7} {'graph s':>8}")
    for r in rows:
        print(f"{r['mode']:8} {r['new']:5} {r['read']:5} {r['stored']:6} {r['seconds']:7.3f} "
              f"{r['read'] / r['seconds']:8.0f} {r.get('graphs', ''):>7} {r.get('graph_seconds', ''):>8}")
    print(f"peak RSS {result['peak_rss_mib']} MiB")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


def _timed(mode: str, n: int, run, graphs: bool = False, profile: Path | None = None) -> dict:
    start = time.perf_counter()
    res = run()
    seconds = time.perf_counter() - start
    # An archive slice may hold a msgid twice; the inbox keeps one.
    assert res.status == "done" and n - n // 100 <= res.read <= n, (res.status, res.read, n, res.error)
    row = {"mode": mode, "new": n, "read": res.read, "stored": res.stored, "seconds": round(seconds, 3)}
    if graphs:
        import cProfile
        from reviewapp.services.graph import recompute_after_import
        prof = cProfile.Profile() if profile else None
        start = time.perf_counter()
        if prof:
            prof.enable()
        row["graphs"] = len(recompute_after_import(res.revisions))
        row["graph_seconds"] = round(time.perf_counter() - start, 3)
        if prof:
            prof.disable()
            prof.dump_stats(profile)
    return row


if __name__ == "__main__":
    raise SystemExit(main())
