"""`inflight LIST [--tree NAME] [--days N] [--json]`: the list's open series applied with their
chains, and which of them conflict with each other (computed here, in this process)."""
from django.core.management.base import BaseCommand, CommandError

from ...services import inflight
from ._cli import emit


class Command(BaseCommand):
    help = "Apply every open series of a list onto its tree and report the pairs that conflict " \
           "(files and hunks of both sides)."

    def add_arguments(self, parser):
        parser.add_argument("list", metavar="LIST")
        parser.add_argument("--tree", help="the tree to apply to (default: the tree named for the list)")
        parser.add_argument("--days", type=int, help="open: posted within this many days "
                                                     "(default REVIEWAPP_INFLIGHT_DAYS)")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        if opts["days"] is not None and opts["days"] < 1:
            raise CommandError("--days: give a whole number of days, 1 or more")
        try:
            result = inflight.compute(opts["list"], opts["tree"], opts["days"])
        except inflight.InflightError as exc:
            raise CommandError(str(exc)) from exc
        emit(self, result.to_json(), opts["json"], render_text(result.to_json()))


def render_text(data: dict) -> str:
    lines = [f"in flight on {data['list']} (tree {data['tree']}): {len(data['open'])} open series, "
             f"{data['pairs_compared']} pairs sharing files compared, {len(data['conflicts'])} conflicts"]
    for s in data["open"]:
        lines.append(f"  {s['apply']:8} {s['title']} v{s['version']} <{s['msgid']}>"
                     + (f": {s['error']}" if s["apply"] != "applied" and s["error"] else ""))
    for c in data["conflicts"]:
        files = ", ".join(f"{f['path']} ({f['hunk_count']} hunk{'s' if f['hunk_count'] != 1 else ''})"
                          for f in c["files"])
        lines.append(f"  conflict: <{c['a']}> and <{c['b']}>: {files}")
    i = data.get("integration") or {}
    if i.get("head"):
        lines.append(f"  integration branch {i['ref']}: {len(i['included'])} series on {i['branch']}, head {i['head'][:12]}")
        for s in i["skipped"]:
            lines.append(f"    left out <{s['msgid']}>: {s['reason']}"
                         + (f" ({', '.join(s['with'])})" if s["with"] else ""))
    if data["pairs_left_out"]:
        lines.append(f"  {data['pairs_left_out']} more pairs share files and were not compared")
    return "\n".join(lines)
