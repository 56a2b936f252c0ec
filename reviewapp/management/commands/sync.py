from django.core.management.base import BaseCommand

from ...services import sync
from ._cli import emit, fail


class Command(BaseCommand):
    help = ("Sync a followed list from its public-inbox archive (only the mail not yet read); "
            "--url registers or updates the list first.")

    def add_arguments(self, parser):
        parser.add_argument("list_name", metavar="LIST", nargs="?")
        parser.add_argument("--url", help="the list's public-inbox URL, e.g. https://lore.kernel.org/linux-mm")
        parser.add_argument("--all", action="store_true", help="sync every followed list")
        parser.add_argument("--no-sync", action="store_true", help="only register (with --url)")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        name = opts["list_name"]
        if bool(name) == opts["all"]:
            raise fail("give one LIST or --all")
        try:
            if opts["url"]:
                if not name:
                    raise fail("--url needs a LIST")
                sync.register(name, opts["url"])
            if opts["no_sync"]:
                emit(self, {"list": name, "url": opts["url"]}, opts["json"], f"following {name}")
                return
            results = sync.sync_all() if opts["all"] else [sync.sync_list(name)]
        except sync.SyncError as exc:
            raise fail(str(exc))
        data = [_as_dict(r) for r in results]
        text = "\n".join(f"{r.list_name}: {r.status} ({r.source}) read {r.read}, stored {r.stored}, "
                         f"duplicate {r.duplicates}, {len(r.revisions)} revisions touched"
                         + (f": {r.error}" if r.error else "") for r in results)
        emit(self, data[0] if name else {"runs": data}, opts["json"], text or "no followed list")
        failed = [r for r in results if r.status != "done"]
        if failed and len(failed) == len(results):
            raise fail("; ".join(f"{r.list_name}: {r.error}" for r in failed))


def _as_dict(r: sync.SyncResult) -> dict:
    return {"run": r.run_id, "list": r.list_name, "status": r.status, "source": r.source,
            "epochs": r.epochs, "read": r.read, "stored": r.stored, "duplicates": r.duplicates,
            "revisions": sorted(r.revisions), "error": r.error}
