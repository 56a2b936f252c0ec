"""Ingest a 20,000-message mbox built from the real mails in ../shared/lore.

Every copy rewrites Message-ID, In-Reply-To and References with a per-copy
suffix, so each copy threads like the original and nothing is a duplicate.
Results and the exact commands: docs/bench-ingest.md.

    psql -h 127.0.0.1 -U postgres -c 'create database bench'
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/ingest_bench.py

Modes (each measured in its own process, so peak RSS is its own):
  ingest          reviewapp.services.ingest.ingest() into DATABASE_URL (the goal)
  untangle-parse  untangle.mail.parse() alone, in this process
  email           Python's email parser alone (message_from_bytes, policy=default)
  b4              b4 as a library: LoreMailbox.add_message() for every mail, then
                  its git patch-id for every patch
  all             each of the above in a subprocess, then a table
"""
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
LORE = REPO.parent / "shared" / "lore"
_ID = re.compile(rb"<([^<>@\s]+@[^<>\s]+)>")
MODES = ("ingest", "untangle-parse", "email", "b4")


def build_mbox(path: Path, count: int) -> int:
    from untangle.mbox import messages_from_path
    originals = [m for f in sorted(LORE.glob("*.mbox")) for m in messages_from_path(f)]
    written = 0
    with open(path, "wb") as out:
        copy = 0
        while written < count:
            for raw in originals:
                if written >= count:
                    break
                head, sep, body = raw.partition(b"\n\n")
                head = re.sub(rb"(?im)^(message-id|in-reply-to|references):.*(\n[ \t].*)*",
                              lambda m: _ID.sub(lambda i: b"<c%d.%s>" % (copy, i.group(1)), m.group(0)), head)
                out.write(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" + head + sep +
                          re.sub(rb"(?m)^(>*From )", rb">\1", body) + b"\n")
                written += 1
            copy += 1
    return written


def build_from_archive(path: Path, archive: Path, limit: int | None, copies: int, skip: int = 0) -> int:
    """`limit` mails of a real archive after its first `skip`, `copies` times; copy c > 0 has
    every msgid rewritten (Message-ID, In-Reply-To, References) so it is new mail
    that threads like the original."""
    from untangle.mbox import messages_from_path
    written = 0
    with open(path, "wb") as out:
        for copy in range(copies):
            for n, raw in enumerate(messages_from_path(archive)):
                if n < skip:
                    continue
                if limit is not None and n >= skip + limit:
                    break
                head, sep, body = raw.partition(b"\n\n")
                if copy:
                    head = re.sub(rb"(?im)^(message-id|in-reply-to|references):.*(\n[ \t].*)*",
                                  lambda m: _ID.sub(lambda i: b"<r%d.%s>" % (copy, i.group(1)), m.group(0)),
                                  head)
                out.write(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" + head + sep +
                          re.sub(rb"(?m)^(>*From )", rb">\1", body) + b"\n")
                written += 1
    return written


def run_graphs(revision_ids: set[int]) -> dict:
    """What the worker does after an import (worker.tasks_graph.recompute_graphs):
    recompute the graphs the touched revisions may change, then first graphs for
    touched revisions that have none. Only affected families, never every graph."""
    from reviewapp.services.graph import recompute_after_import
    start = time.perf_counter()
    done = recompute_after_import(revision_ids)
    elapsed = time.perf_counter() - start
    return {"graphs": len(done), "graph_seconds": elapsed, "touched": len(revision_ids)}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _peaks() -> dict:
    # ru_maxrss is in KiB on Linux; CHILDREN is the largest reaped child (a parser).
    return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "children_peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def _cpu() -> float:
    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))


def run_ingest(mbox: Path, workers: int | None, graphs: bool = False) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    import django
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    call_command("migrate", verbosity=0)
    from reviewapp.models import Message, Revision, Series
    from reviewapp.services.ingest import ingest
    from untangle.mbox import messages_from_path
    before = Message.objects.count()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu0, start = _cpu(), time.perf_counter()
    result = ingest(messages_from_path(mbox), workers=workers)
    elapsed = time.perf_counter() - start
    stored = Message.objects.count() - before
    load = _load()
    extra = run_graphs(result.revisions) if graphs else {}
    return {"mode": "ingest", "database": connection.vendor, "messages": stored, "read": result.read,
            "quarantined": result.quarantined, "load_at_end": load, **extra,
            "duplicates": result.duplicates, "errors": len(result.errors), "seconds": elapsed,
            "per_second": stored / elapsed, "cpu_seconds": _cpu() - cpu0,
            "rss_before_mib": rss0, "revisions": Revision.objects.count(),
            "series": Series.objects.count(), **_peaks()}


def run_untangle_parse(mbox: Path) -> dict:
    from untangle import mail
    from untangle.mbox import messages_from_path
    start, n = time.perf_counter(), 0
    for raw in messages_from_path(mbox):
        mail.parse_or_error(raw)
        n += 1
    return _rate("untangle-parse", n, start)


def run_email(mbox: Path) -> dict:
    import email
    import email.policy
    from untangle.mbox import messages_from_path
    start, n = time.perf_counter(), 0
    for raw in messages_from_path(mbox):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        if body is not None:
            body.get_content()
        n += 1
    return _rate("email", n, start)


def run_b4(mbox: Path) -> dict:
    import email
    import logging
    import b4
    from untangle.mbox import messages_from_path
    logging.getLogger("b4").setLevel(logging.ERROR)
    b4.setup_config(argparse.Namespace(config={"b4.attestation-policy": "off",
                                               "b4.attestation-check-dkim": "no"}))
    start, n = time.perf_counter(), 0
    mailbox = b4.LoreMailbox()
    for raw in messages_from_path(mbox):
        mailbox.add_message(email.message_from_bytes(raw, policy=b4.emlpolicy))
        n += 1
    patch_ids = sum(1 for lmsg in mailbox.msgid_map.values() if lmsg.has_diff and lmsg.git_patch_id)
    return {**_rate("b4", n, start), "patch_ids": patch_ids}


def _rate(mode: str, n: int, start: float) -> dict:
    elapsed = time.perf_counter() - start
    return {"mode": mode, "messages": n, "seconds": elapsed, "per_second": n / elapsed, **_peaks()}


def run_all(args) -> None:
    rows = []
    for mode in MODES:
        cmd = [sys.executable, __file__, "--mode", mode, "--mbox", str(args.mbox), "--json"]
        if args.workers is not None:
            cmd += ["--workers", str(args.workers)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print(f"{'mode':16} {'messages':>8} {'msg/s':>7} {'peak MiB':>9} {'parser MiB':>10}")
    for r in rows:
        child = f"{r['children_peak_rss_mib']:.0f}" if r["mode"] == "ingest" else "-"
        print(f"{r['mode']:16} {r['messages']:8d} {r['per_second']:7.0f} {r['peak_rss_mib']:9.0f} {child:>10}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--mbox", type=Path, default=REPO / "var" / "bench" / "ingest-20k.mbox")
    parser.add_argument("--mode", choices=MODES + ("all",), default="ingest")
    parser.add_argument("--workers", type=int, default=None, help="parser processes (0: inline)")
    parser.add_argument("--json", action="store_true", help="one JSON line instead of prose")
    parser.add_argument("--archive", type=Path, help="a real list archive (mbox[.gz]) instead of ../shared/lore")
    parser.add_argument("--limit", type=int, help="only N of the archive's mails")
    parser.add_argument("--skip", type=int, default=0, help="after its first N (a slice: --skip 15000 --limit 5000)")
    parser.add_argument("--copies", type=int, default=1, help="the archive replicated, msgids rewritten")
    parser.add_argument("--graphs", action="store_true", help="then compute every revision's graph")
    args = parser.parse_args()
    args.mbox.parent.mkdir(parents=True, exist_ok=True)
    if not args.mbox.exists():
        if args.archive:
            build_from_archive(args.mbox, args.archive, args.limit, args.copies, args.skip)
        else:
            build_mbox(args.mbox, args.count)
    if args.mode == "all":
        return run_all(args)
    result = {"ingest": lambda: run_ingest(args.mbox, args.workers, args.graphs),
              "untangle-parse": lambda: run_untangle_parse(args.mbox),
              "email": lambda: run_email(args.mbox), "b4": lambda: run_b4(args.mbox)}[args.mode]()
    result["mbox_mib"] = args.mbox.stat().st_size / 2**20
    if args.json:
        print(json.dumps(result))
        return
    print(f"mode: {result['mode']}  mbox: {result['mbox_mib']:.1f} MiB")
    if result["mode"] == "ingest":
        print(f"database: {result['database']}  stored {result['messages']} messages "
              f"({result['duplicates']} duplicates, {result['errors']} unparsable) in "
              f"{result['seconds']:.1f} s: {result['per_second']:.0f} messages/s; "
              f"revisions now {result['revisions']}, series {result['series']}")
        print(f"peak RSS {result['peak_rss_mib']:.0f} MiB (before ingest {result['rss_before_mib']:.0f} MiB), "
              f"parser process peak {result['children_peak_rss_mib']:.0f} MiB, "
              f"CPU {result['cpu_seconds']:.1f} s (this process and its parsers)")
        print(f"read {result['read']}, quarantined {result['quarantined']}; load average at the end "
              f"{result['load_at_end']}")
        if "graphs" in result:
            print(f"graphs of {result['graphs']} revisions (of {result['touched']} touched) computed in {result['graph_seconds']:.1f} s "
                  f"({result['graph_seconds'] / result['seconds']:.2f}x the import)")
        if result["duplicates"]:
            print("note: the database already held some of these mails; use an empty one")
    else:
        print(f"read {result['messages']} messages in {result['seconds']:.1f} s: "
              f"{result['per_second']:.0f} messages/s; peak RSS {result['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
