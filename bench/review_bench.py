"""Review state over a real archive: what it costs next to the import, and how often
our trailer set for a patch equals the one `b4 am` puts on it (docs/review.md).

    .venv/bin/python bench/review_bench.py                      # SQLite in a temp dir
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/review_bench.py
    .venv/bin/python bench/review_bench.py --b4 all             # compare every thread with b4 am

Steps: import the archive (reviewapp.services.ingest, as `manage.py ingest` does), then
compute the review state of every revision (reviewapp.services.review.recompute, what
the worker does after an import), then (--b4) for each thread whose replies give
Reviewed/Acked/Tested-by, run `b4 am -m THREAD.mbox` and compare per patch.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ARCHIVE = REPO.parent / "shared" / "archives" / "linux-kselftest-2019-2021.mbox.gz"


def setup_django(tmp: Path) -> None:
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp / 'bench.sqlite3'}")
    os.environ.setdefault("REVIEWAPP_DATA_DIR", str(tmp / "data"))
    os.environ.setdefault("REVIEWAPP_VAR_DIR", str(tmp))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    import django
    django.setup()
    from django.core.management import call_command
    call_command("migrate", verbosity=0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--archive", type=Path, default=ARCHIVE)
    ap.add_argument("--b4", default="0", help="threads to compare with b4 am: a number, or 'all'")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--reuse", action="store_true",
                    help="DATABASE_URL already holds the archive: skip the import and the review pass")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        setup_django(tmp)
        from django.db import connection
        from reviewapp.models import Revision
        from reviewapp.services import ingest, review
        from untangle.mbox import messages_from_path
        figures = {"database": connection.vendor}
        if not args.reuse:
            t0 = time.perf_counter()
            result = ingest.ingest(messages_from_path(args.archive), "linux-kselftest")
            t_import = time.perf_counter() - t0
            ids = list(Revision.objects.live().values_list("id", flat=True))
            t0 = time.perf_counter()
            review.recompute(ids)
            t_review = time.perf_counter() - t0
            figures.update({"mails": result.read, "revisions": len(ids), "import_s": round(t_import, 1),
                            "review_s": round(t_review, 1), "ratio": round(t_review / t_import, 2)})
            print(json.dumps(figures))
        if args.b4 != "0":
            from tests.support.b4_compare import compare_archive
            limit = None if args.b4 == "all" else int(args.b4)
            figures["b4"] = compare_archive(args.archive, tmp / "b4", limit)
            print(json.dumps(figures["b4"], indent=1))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
