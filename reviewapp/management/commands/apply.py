from django.core.management.base import BaseCommand

from ...services import apply as service
from ._cli import emit, fail, msgid_of, revision_for, tree_named


class Command(BaseCommand):
    help = ("Apply a series and the chain it depends on onto a tree. Prints the result; "
            "exit status 0 when applied, 1 on conflict, failure or error.")

    def add_arguments(self, parser):
        parser.add_argument("ref", metavar="MSGID_OR_URL")
        parser.add_argument("--tree", required=True, metavar="NAME")
        parser.add_argument("--base", metavar="REV", help="apply onto this commit/ref instead of choosing")
        parser.add_argument("--newest", action="store_true",
                            help="use the newest revision of each dependency, not the declared one")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        msgid = msgid_of(opts["ref"])
        tree = tree_named(opts["tree"])
        rev = revision_for(msgid)
        run = service.apply(rev, tree, base=opts["base"], newest=opts["newest"],
                            progress=None if opts["json"] else self._progress)
        data = service.run_dict(run)
        emit(self, data, opts["json"], self._text(run, data))
        if run.status != run.APPLIED:
            # The JSON is on stdout already; the exit status tells scripts it did not apply.
            raise fail(f"apply run {run.id}: {run.status}: {run.error}")

    def _progress(self, k: int, n: int) -> None:
        self.stderr.write(f"\rapplying {k}/{n}", ending="")
        if k == n:
            self.stderr.write("")

    def _text(self, run, data) -> str:
        lines = [f"{data['status']} onto {data['base'] or '-'} ({data['base_rule']})"
                 + (" [cached]" if data["cached"] else "")]
        lines += [f"  {a['commit'][:12]} <{a['msgid']}>" for a in data["applied"]]
        if data["failed"]:
            lines.append(f"  failed at <{data['failed']['msgid']}>: {data['failed']['error']}")
        if data["ref"]:
            lines.append(f"ref {data['ref']} head {data['head']}")
        return "\n".join(lines)
