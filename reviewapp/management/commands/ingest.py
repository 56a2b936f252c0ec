from itertools import chain

from django.conf import settings
from django.core.management.base import BaseCommand

from untangle import lore
from untangle.mbox import MboxError, messages_from_path

from ...selectors import revision_dict, revisions
from ...services import fetch
from ...services.ingest import ingest
from ._cli import emit, fail


class Command(BaseCommand):
    help = "Ingest mbox/mboxrd/.eml/.gz files, or fetch a thread by message-id or lore URL."

    def add_arguments(self, parser):
        src = parser.add_mutually_exclusive_group(required=True)
        src.add_argument("--mbox", nargs="+", metavar="PATH")
        src.add_argument("--msgid", metavar="MSGID_OR_URL")
        parser.add_argument("--list", dest="list_name")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        try:
            if opts["mbox"]:
                result = ingest(chain.from_iterable(messages_from_path(p, settings.GZIP_MAX_BYTES)
                                                for p in opts["mbox"]),
                                list_name=opts["list_name"])
            else:
                result = fetch.fetch_thread(lore.parse_ref(opts["msgid"]))
        except (MboxError, ValueError, lore.FetchError) as exc:
            raise fail(str(exc))
        for error in result.errors:
            self.stderr.write(f"warning: {error}")
        if not result.revisions and result.stored == 0 and result.errors:
            raise fail("no mail could be read")
        revs = revisions(result.revisions)
        data = {"series": [revision_dict(r) for r in revs]}
        text = "\n".join(f"v{r.version} {r.received}/{r.expected} {r.title} <{r.msgid}>" for r in revs)
        emit(self, data, opts["json"], text or f"stored {result.stored}, nothing new")
