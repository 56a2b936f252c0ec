from django.core.management.base import BaseCommand

from ...models import Tree
from ...services import results, trees
from ._cli import add_json_flag, emit, fail


class Command(BaseCommand):
    help = "Register git trees to apply onto (URL, local path or bundle), list them, fetch them."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="register a tree and build its mirror")
        add.add_argument("name")
        add.add_argument("source", metavar="URL_OR_PATH_OR_BUNDLE")
        add.add_argument("--branch", action="append", dest="branches", default=[],
                         help="branch to mirror (repeatable; default: every ref)")
        add.add_argument("--no-fetch", action="store_true", help="register only; fetch later")
        sub.add_parser("list", help="list trees")
        fetch = sub.add_parser("fetch", help="fetch a tree's mirror now")
        fetch.add_argument("name")
        about = ("make or catch up this host's mirrors (every tree unless named) and take in the chains "
                 "other hosts published; run it at a host's start")
        local = sub.add_parser("local", help=about, description=about)
        local.add_argument("names", nargs="*")
        add_json_flag(add, sub.choices["list"], fetch, local)

    def handle(self, *args, **opts):
        try:
            if opts["action"] == "add":
                tree = trees.add_tree(opts["name"], opts["source"], opts["branches"],
                                      fetch=not opts["no_fetch"])
                return self._show([tree], opts)
            if opts["action"] == "fetch":
                tree = trees.get_tree(opts["name"])
                if not trees.claim_fetch(tree.id):
                    raise fail(f"tree {tree.name} is being fetched by another process")
                return self._show([trees.fetch_tree(tree.id, claimed=True)], opts)
            if opts["action"] == "local":
                rows = [trees.get_tree(n) for n in opts["names"]] or list(Tree.objects.order_by("name"))
                for tree in rows:
                    results.import_published(tree)
                return self._show(rows, opts, listing=True)
            return self._show(list(Tree.objects.order_by("name")), opts, listing=True)
        except trees.TreeError as exc:
            raise fail(str(exc))

    def _show(self, rows, opts, listing=False):
        data = [trees.tree_dict(t) for t in rows]
        text = "\n".join(f"{d['name']:<16} {d['state']:<9} {(d['head'] or '-')[:12]:<12} "
                         f"{d['default_branch'] or '-':<12} {d['source']}" for d in data)
        emit(self, {"trees": data} if listing else data[0], opts["json"], text or "no trees")
