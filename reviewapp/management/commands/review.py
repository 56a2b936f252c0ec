"""`review MSGID_OR_URL [--tree NAME] [--json]`: where the review of a series and of its chain stands."""
from django.core.management.base import BaseCommand

from ...selectors import chain_revisions, review_of
from ...services import review
from ._cli import emit, msgid_of, revision_for, tree_named


class Command(BaseCommand):
    help = "Review state of a series: trailers (as b4 am applies them), carried and stale reviews, " \
           "comments, objections, expected reviewers (MAINTAINERS of --tree), and its chain's."

    def add_arguments(self, parser):
        parser.add_argument("ref", metavar="MSGID_OR_URL")
        parser.add_argument("--tree", help="read MAINTAINERS from this tree (default: the tree the chain "
                                           "applied to, else the list's, else REVIEWAPP_REVIEW_TREE)")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        rev = revision_for(msgid_of(opts["ref"]), fetch_missing=False)
        tree = tree_named(opts["tree"]) if opts["tree"] else None
        chain = chain_revisions(rev)
        review.recompute(sorted({rev.id, *[r.id for r in chain]}), tree)
        data = review_of(rev)
        emit(self, data, opts["json"], render_text(data))


def _who(x: dict) -> str:
    return f"{x['name']} <{x['email']}>" if x.get("name") else x.get("email", "")


def render_text(data: dict) -> str:
    s = data["summary"]
    lines = [f"review of <{data['msgid']}> (v{data['version']}): {data['state']}",
             f"  {s['reviewed']} of {s['patches']} patches reviewed; {s['carried']} trailers carried, "
             f"{s['stale']} patches with stale reviews only; {s['objections_open']} open objections"]
    for o in s["objections"]:
        lines.append(f"  objection: {_who(o)}: {o['reason']} <{o['msgid']}>")
    if s["waiting_on"]:
        lines.append(f"  expected, not yet heard from ({data['tree']}): " + ", ".join(s["waiting_on"]))
    for p in data["patches"]:
        lines.append(f"  [{p['number']}] {p['title']}")
        for t in p["trailers"]:
            note = (f" (given on v{t['carried_from']}, patch changed since)" if t["stale"] else
                    f" (carried from v{t['carried_from']})" if t["carried_from"] is not None else
                    " (for the series)" if t["via"] == "cover" else "")
            lines.append(f"      {t['kind']}: {_who(t)}{note}")
        for c in p["comments"]:
            lines.append(f"      comments: {_who(c)}, {c['mails']} mail(s)"
                         f"{', answered by the author' if c['answered'] else ''}")
    for c in data.get("chain", []):
        lines.append(f"  needs {c.get('title', c['msgid'])} v{c.get('version', '?')}: {c['state']}"
                     f" ({c.get('reviewed', 0)} of {c.get('patches', 0)} reviewed, "
                     f"{c.get('objections_open', 0)} open objections)")
    return "\n".join(lines)
