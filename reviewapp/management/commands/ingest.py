from itertools import chain

from django.conf import settings
from django.core.management.base import BaseCommand

from untangle import lore
from untangle.mbox import MboxError, messages_from_path

from ...selectors import revision_dict, revisions
from ...services import dbstats, fetch
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
                result = ingest(chain.from_iterable(messages_from_path(p, settings.GZIP_MAX_BYTES,
                                                                   settings.INGEST_MAX_MAIL_BYTES,
                                                                   settings.GZIP_MAX_RATIO)
                                                for p in opts["mbox"]),
                                list_name=opts["list_name"], source=" ".join(opts["mbox"]))
            else:
                result = fetch.fetch_thread(lore.parse_ref(opts["msgid"]))
        except (MboxError, ValueError, lore.FetchError) as exc:
            raise fail(str(exc))
        dbstats.refresh_after(result.stored)  # an archive's worth: the graphs that follow need fresh plans
        for error in result.errors:
            self.stderr.write(f"quarantined: {error}")
        # Some mails refused is a normal import; none readable at all is a failure.
        if result.stored + result.duplicates == 0 and result.quarantined:
            raise fail(f"no mail could be read ({result.quarantined} quarantined)")
        counts = result.counts()
        revs = revisions(result.revisions)
        data = {"counts": counts, "series": [revision_dict(r) for r in revs]}
        lines = [f"v{r.version} {r.received}/{r.expected} {r.title} <{r.msgid}>" for r in revs]
        lines.append(", ".join(f"{n} {what}" for what, n in counts.items()))
        emit(self, data, opts["json"], "\n".join(lines))
