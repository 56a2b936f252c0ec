from django.core.management.base import BaseCommand

from ._cli import emit, fail


class Command(BaseCommand):
    help = "demo load: ingest the demo threads and register the demo tree as `demo` (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["load"])
        parser.add_argument("--no-runs", action="store_true",
                            help="do not queue the demo applies and suite runs")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        from ...services import demo
        from ...services.trees import TreeError
        try:
            result = demo.load(runs=not opts["no_runs"])
        except TreeError as exc:
            raise fail(str(exc))
        emit(self, result, opts["json"],
             f"demo: {result['stored']} new mails, {len(result['revisions'])} revisions touched, tree {result['tree']}")
