"""Ingest a 20,000-message mbox built from the real mails in ../shared/lore.

Every copy rewrites Message-ID, In-Reply-To and References with a per-copy
suffix, so each copy threads like the original and nothing is a duplicate.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/ingest_bench.py
"""
import argparse
import os
import re
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
LORE = REPO.parent / "shared" / "lore"
_ID = re.compile(rb"<([^<>@\s]+@[^<>\s]+)>")


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--mbox", type=Path, default=REPO / "var" / "bench" / "ingest-20k.mbox")
    args = parser.parse_args()
    args.mbox.parent.mkdir(parents=True, exist_ok=True)
    if not args.mbox.exists():
        build_mbox(args.mbox, args.count)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    import django
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    call_command("migrate", verbosity=0)
    from reviewapp.models import Message, Revision
    from reviewapp.services.ingest import ingest
    from untangle.mbox import messages_from_path
    before = Message.objects.count()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = ingest(messages_from_path(args.mbox))
    elapsed = time.perf_counter() - start
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stored = Message.objects.count() - before
    print(f"database: {connection.vendor}  mbox: {args.mbox.stat().st_size / 2**20:.1f} MiB")
    print(f"stored {stored} messages ({result.duplicates} duplicates) in {elapsed:.1f} s: "
          f"{stored / elapsed:.0f} messages/s; revisions now {Revision.objects.count()}")
    print(f"peak RSS {rss1 / 1024:.0f} MiB (before ingest {rss0 / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
