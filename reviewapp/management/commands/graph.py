"""`graph MSGID_OR_URL [--fetch] [--json]`: what a series is built on, with evidence."""
from django.conf import settings
from django.core.management.base import BaseCommand

from ...services.graph import graph_for
from ...wording import not_needed_sentence
from ._cli import emit, msgid_of, revision_for


class Command(BaseCommand):
    help = "Dependency graph of a series: apply order, edges with evidence, problems."

    def add_arguments(self, parser):
        parser.add_argument("ref", metavar="MSGID_OR_URL")
        parser.add_argument("--fetch", action="store_true",
                            help="fetch every referenced thread that is not stored (through b4)")
        parser.add_argument("--depth", type=int, default=None,
                            help=f"how many dependency hops to fetch (default {settings.GRAPH_DEPTH})")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        rev = revision_for(msgid_of(opts["ref"]), fetch_missing=opts["fetch"])
        data = graph_for(rev, fetch=opts["fetch"], depth=opts["depth"])
        names = {n["msgid"]: n["label"] for n in data["nodes"]}
        for u in data.get("unneeded", []):  # the sentence, made here at the edge
            u["detail"] = not_needed_sentence(u, data["root"], names)
        emit(self, data, opts["json"], render_text(data))


def render_text(data: dict) -> str:
    names = {n["msgid"]: n["label"] for n in data["nodes"]}
    nodes = {n["msgid"]: n for n in data["nodes"]}
    lines = [f"graph of {names[data['root']]} <{data['root']}>", "", "apply order (dependencies first):"]
    for i, m in enumerate(data["order"], 1):
        n = nodes[m]
        newer = f"  (newer: {names.get(n['newer'], n['newer'])})" if n.get("newer") else ""
        lines.append(f"  {i}. {names[m]} [{n['state']}] <{m}>{newer}")
    if data.get("newest_differs"):
        lines.append("with the newest revisions instead:")
        lines += [f"  {i}. {names.get(m, m)} <{m}>" for i, m in enumerate(data["newest_order"], 1)]
    lines += ["", "problems:"] + ([f"  - {p['kind']}: {p['detail']}" for p in data["problems"]] or ["  none"])
    if data.get("unneeded"):
        lines += ["", "not needed:"] + [f"  - {u['detail']}" for u in data["unneeded"]]
    lines += ["", "edges:"]
    for e in data["edges"]:
        first = (e["evidence"] or "").strip().splitlines()
        lines.append(f"  {names.get(e['from'], e['from'])} --{e['kind']} ({e['how']})--> "
                     f"{names.get(e['to'], e['to'])}")
        lines.append(f"      \"{first[0] if first else ''}\"{' ...' if len(first) > 1 else ''}"
                     f"  (in <{e['evidence_msgid']}>)")
    changes = data.get("snapshot", {}).get("changes") or []
    if changes:
        lines += ["", "changed since the previous graph:"] + [f"  - {c['detail']}" for c in changes]
    return "\n".join(lines)
