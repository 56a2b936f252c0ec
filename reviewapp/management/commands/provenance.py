from django.core.management.base import BaseCommand

from ...models import ApplyRun
from ...services import apply as apply_service, provenance as prov
from ._cli import emit, fail, msgid_of, revision_for, tree_named


class Command(BaseCommand):
    help = ("For every line of PATH at the head of the series' applied chain, the patch that "
            "introduced it (null: the base). Applies the chain onto the tree unless a run can be reused.")

    def add_arguments(self, parser):
        parser.add_argument("ref", metavar="MSGID_OR_URL")
        parser.add_argument("path", metavar="PATH")
        parser.add_argument("--tree", required=True, metavar="NAME")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        msgid = msgid_of(opts["ref"])
        tree = tree_named(opts["tree"])
        try:
            path = prov.clean_path(opts["path"])
        except prov.BrowseError as exc:
            raise fail(str(exc))
        rev = revision_for(msgid)
        run = self._reusable(rev, tree) or apply_service.apply(rev, tree)
        if run.status != ApplyRun.APPLIED:
            raise fail(f"apply run {run.id}: {run.status}: {run.error}")
        try:
            chain = prov.load_chain(run)
            data = prov.provenance(chain, path)
            text = self._text(chain, path, data) if not opts["json"] else None
        except prov.BrowseError as exc:
            raise fail(str(exc))
        emit(self, data, opts["json"], text)

    def _reusable(self, rev, tree) -> ApplyRun | None:
        """The newest applied run of exactly this series as declared, on the tree as it is now."""
        qs = ApplyRun.objects.filter(root=rev, tree=tree, status=ApplyRun.APPLIED, newest=False,
                                     given_base="").exclude(head="")
        if tree.fetched:
            qs = qs.filter(created__gte=tree.fetched)
        return qs.order_by("-created").first()

    def _text(self, chain, path, data) -> str:
        """Blame-like: line number, patch label (or base), the line."""
        text, _ = prov.read_text(chain, path)
        lines = (text or "").split("\n")
        owners = {p.msgid: p for p in chain.patches}
        out = [f"{path} at {data['head']}"]
        for row, line in zip(data["lines"], lines):
            p = owners.get(row["msgid"])
            who = f"{p.revision.title[:24]} {p.label}" if p and p.revision else "base"
            out.append(f"{row['n']:>6} {who:<32} {line}")
        return "\n".join(out)
