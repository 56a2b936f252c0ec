from django.core.management.base import BaseCommand

from ...selectors import revision_dict, revisions
from ._cli import emit


class Command(BaseCommand):
    help = "List every revision known."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        revs = revisions()
        data = {"series": [revision_dict(r) for r in revs]}
        lines = [f"v{r.version} {r.received}/{r.expected} {r.title}  <{r.msgid}>" for r in revs]
        emit(self, data, opts["json"], "\n".join(lines) or "no series")
