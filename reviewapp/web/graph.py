"""The graph page (/graph/<msgid>/) and the graph panel of the series page.

The drawing is server-rendered SVG: nodes are laid out in columns by
dependency depth (bases on the left, the root and what builds on it on the
right), so the apply order reads left to right.
"""
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from untangle import msgid as msgids

from ..models import GraphSnapshot
from ..permissions import is_maintainer, maintainer_required
from ..selectors import conflicts_of, review_of, revision_or_404, stored_graph
from ..wording import not_needed_sentence
from ..pagecache import anonymous_cached

NODE_W, NODE_H, BASE_H = 235, 58, 34
COL_W, ROW_H, PAD = 300, 76, 30
ROLE_RANK = {"root": 0, "dependency": 1, "missing": 2, "replaced": 3, "newer": 4, "previous": 5,
             "related": 6, "dependent": 7, "mentioned": 8, "base": 9}
EDGE_STYLE = {  # kind -> (stroke, dash, width)
    "depends-on": ("#1d232a", "", 2.2),
    "previous-revision": ("#5b6670", "7 4", 1.6),
    "supersedes": ("#6b3fa0", "10 3 2 3", 1.8),
    "related": ("#8a949e", "2 4", 1.4),
    "base": ("#aab3bc", "", 1.1),
}
LEGEND_STATES = (("ok", "ok"), ("superseded", "superseded (a newer revision exists)"),
                 ("incomplete", "incomplete (patches missing)"), ("missing", "missing (not stored / not fetched)"),
                 ("base", "base commit"))


# ---------------------------------------------------------------- layout

def _layers(nodes: dict, edges: list[dict]) -> dict[str, int]:
    """Column of each node: 0 for what needs nothing, 1 + deepest dependency otherwise."""
    deps: dict[str, list[str]] = {m: [] for m in nodes}
    for e in edges:
        if e["kind"] in ("depends-on", "base") and not e.get("broken_cycle") and e["from"] != e["to"]:
            deps[e["from"]].append(e["to"])
    layer: dict[str, int] = {}
    visiting: set[str] = set()

    def depth(m: str) -> int:  # iterative enough for graphs of a few dozen nodes
        if m in layer:
            return layer[m]
        if m in visiting:  # a cycle not broken (e.g. via base edges): stop here
            return 0
        visiting.add(m)
        layer[m] = 1 + max((depth(t) for t in deps[m]), default=-1)
        visiting.discard(m)
        return layer[m]

    for m in nodes:
        depth(m)
    anchored = {m for m in nodes if deps[m]} | {t for ts in deps.values() for t in ts}
    # Nodes outside the dependency structure sit beside the node they are linked to.
    for _ in range(2):
        for e in edges:
            a, b = e["from"], e["to"]
            if a in anchored and b not in anchored:
                layer[b] = layer[a]
                anchored.add(b)
            elif b in anchored and a not in anchored:
                layer[a] = layer[b]
                anchored.add(a)
    return layer


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def layout(data: dict) -> dict:
    """Coordinates for the SVG: nodes (boxes) and edges (paths), plus the canvas size."""
    nodes = {n["msgid"]: n for n in data["nodes"]}
    layer = _layers(nodes, data["edges"])
    columns: dict[int, list[str]] = {}
    for m in nodes:
        columns.setdefault(layer.get(m, 0), []).append(m)
    boxes = {}
    for col, members in columns.items():
        members.sort(key=lambda m: (ROLE_RANK.get(nodes[m]["role"], 9), nodes[m].get("date") or "", m))
        for row, m in enumerate(members):
            n = nodes[m]
            h = BASE_H if n["kind"] == "base" else NODE_H
            boxes[m] = {"x": PAD + col * COL_W, "y": PAD + row * ROW_H, "w": NODE_W, "h": h}
    width = PAD * 2 + (max(columns, default=0) + 1) * COL_W - (COL_W - NODE_W)
    height = PAD * 2 + max((len(v) for v in columns.values()), default=1) * ROW_H
    out_nodes = [_node_shape(nodes[m], boxes[m]) for m in nodes]
    out_edges = []
    seen: dict[tuple, int] = {}
    for i, e in enumerate(data["edges"]):
        if e["from"] not in boxes or e["to"] not in boxes:
            continue
        pair = (e["from"], e["to"])
        seen[pair] = seen.get(pair, -1) + 1
        out_edges.append(_edge_shape(i, e, boxes[e["from"]], boxes[e["to"]], seen[pair]))
    return {"width": width, "height": height + 10, "nodes": out_nodes, "edges": out_edges}


def _node_shape(n: dict, box: dict) -> dict:
    state = "base" if n["kind"] == "base" else n["state"]
    if n["kind"] == "base":
        title = n["msgid"] if len(n["msgid"]) < 20 else n["msgid"][:12]
        line2 = f"base ({n.get('ref') or 'sha'})"
        url = ""
    elif n["kind"] == "missing":
        title, line2 = _short(n["msgid"], 36), "missing: " + _short(n.get("error") or "not stored", 30)
        url = msgids.lore_url(n["msgid"], settings.LORE_URL)
    else:
        name, suffix = n["label"], f" v{n['version']}"
        name = name[: -len(suffix)] if name.endswith(suffix) else name
        title = _short(name, 28) + suffix  # the version must survive the cut
        extra = f"{n['received']}/{n['expected']} patches" if not n["complete"] else (n.get("date") or "")[:10]
        if n.get("partial_root"):
            extra = f"{n['received']} of {n['expected']} on this list"
        line2 = f"{n['role']} · {n['state']} · {extra}"
        url = reverse("series-detail", args=[n["msgid"]])
    return dict(box, msgid=n["msgid"], state=state, role=n["role"], title=title, line2=line2, url=url,
                hover=f"{n['subject']}\n<{n['msgid']}>\n{n['role']}, {n['state']}"
                      + (f"\n{n['error']}" if n.get("error") else "")
                      + (f"\npartial: the cover <{n['partial_root']}> and the other patches went to other lists"
                         if n.get("partial_root") else ""),
                root=n["role"] == "root", tx=box["x"] + 10, ty1=box["y"] + 21, ty2=box["y"] + 41)


def _edge_shape(i: int, e: dict, a: dict, b: dict, nth: int) -> dict:
    bend = 14 * nth
    ay, by = a["y"] + a["h"] / 2 + bend / 2, b["y"] + b["h"] / 2 + bend / 2
    if a["x"] > b["x"]:  # towards a dependency on the left
        sx, tx = a["x"], b["x"] + b["w"]
        mid = (sx - tx) / 2
        d = f"M{sx},{ay} C{sx - mid},{ay} {tx + mid},{by} {tx},{by}"
    elif a["x"] < b["x"]:
        sx, tx = a["x"] + a["w"], b["x"]
        mid = (tx - sx) / 2
        d = f"M{sx},{ay} C{sx + mid},{ay} {tx - mid},{by} {tx},{by}"
    else:  # same column: bow out to the left
        sx = tx = a["x"]
        out = 40 + 18 * nth + abs(ay - by) / 6
        d = f"M{sx},{ay} C{sx - out},{ay} {tx - out},{by} {tx},{by}"
    stroke, dash, width = EDGE_STYLE.get(e["kind"], EDGE_STYLE["related"])
    if e["how"] == "blob" and e["kind"] == "depends-on":
        stroke = "#2457a6"
    if e.get("broken_cycle"):
        stroke, dash = "#b3261e", "4 3"
    first = (e["evidence"] or "").strip().splitlines()
    return {"id": f"edge-{i}", "d": d, "stroke": stroke, "dash": dash, "width": width,
            "opacity": 1 if e.get("used") or e["kind"] != "depends-on" else 0.55,
            "kind": e["kind"], "how": e["how"], "marker": e["kind"].replace("-", ""),
            "hover": f"{e['kind']} ({e['how']}): {first[0] if first else ''}\nfrom <{e['evidence_msgid']}>"}


# ---------------------------------------------------------------- reader's summary

def summary(data: dict) -> dict:
    """The answer in a few lines: what the root needs, in which revision, is it the newest."""
    nodes = {n["msgid"]: n for n in data["nodes"]}
    needs = []
    for m in data["order"]:
        if m == data["root"]:
            continue
        n = nodes[m]
        newest = nodes.get(n.get("newest") or "") if n.get("newest") != m else None
        needs.append({"msgid": m, "label": n["label"], "version": n["version"], "state": n["state"],
                      "newest": newest})
    missing = [nodes[m] for m in nodes if nodes[m]["role"] == "missing"]
    names = {m: n["label"] for m, n in nodes.items()}
    unneeded = [{"msgid": u["msgid"], "detail": not_needed_sentence(u, data["root"], names)}
                for u in data.get("unneeded", [])]
    return {"needs": needs, "missing": missing, "unneeded": unneeded,
            "problems": data["problems"], "root": nodes[data["root"]]}


def _edge_rows(data: dict) -> list[dict]:
    names = {n["msgid"]: n["label"] for n in data["nodes"]}
    stored = {n["msgid"] for n in data["nodes"] if n["kind"] == "revision"}
    return [dict(e, id=f"edge-{i}", from_label=names.get(e["from"], e["from"]),
                 to_label=names.get(e["to"], e["to"]), to_stored=e["to"] in stored)
            for i, e in enumerate(data["edges"])]


# ---------------------------------------------------------------- views

@anonymous_cached
def graph_detail(request, msgid):
    """The stored graph: pages never compute it (the worker does when mail arrives)."""
    rev = revision_or_404(msgid)
    if rev.msgid != msgid:
        return redirect("graph-detail", msgid=rev.msgid)
    graph = stored_graph(rev)
    ctx = {"rev": rev, "graph": graph, "can_fetch": is_maintainer(request.user),
           "lore_url": settings.LORE_URL}
    if not graph.stored:
        return render(request, "graph/detail.html", ctx)
    data = graph.data
    history = list(GraphSnapshot.objects.filter(root=rev).order_by("-computed", "-id")
                   .only("id", "computed", "changes")[:10])
    nodes = {n["msgid"]: n for n in data["nodes"]}
    ctx.update({
        "data": data, "svg": layout(data), "summary": summary(data),
        "edge_rows": _edge_rows(data), "history": history, "nodes": nodes,
        "order": [nodes[m] for m in data["order"]],
        "newest_order": [nodes[m] for m in data["newest_order"]] if data.get("newest_differs") else [],
        "edge_styles": [(k, *v) for k, v in EDGE_STYLE.items()], "legend_states": LEGEND_STATES,
        "chains": _chain_results(rev), "review": review_of(rev), "conflicts": conflicts_of(rev)})
    return render(request, "graph/detail.html", ctx)


def _chain_results(rev) -> list[dict]:
    """The latest apply of each (tree, declared/newest) chain, with its suite badge."""
    from ..models import ApplyRun
    from .suites import suite_badge
    latest = {}
    runs = (ApplyRun.objects.filter(root=rev).select_related("tree").order_by("-created", "-id"))
    for run in runs[:200]:
        latest.setdefault((run.tree_id, run.newest), run)
    return [{"run": run, "suite": suite_badge(run) if run.status == ApplyRun.APPLIED else None}
            for run in latest.values()]


@require_POST
@maintainer_required("graph-fetch")
def graph_fetch(request, msgid):
    rev = revision_or_404(msgid)
    from .. import dispatch
    dispatch.fetch_graph(rev.id)
    messages.info(request, "Fetching the missing threads; reload this page in a moment.")
    return redirect("graph-detail", msgid=rev.msgid)


def series_panel(request, revision) -> dict:
    """Context for templates/graph/_series_panel.html on the series page."""
    graph = stored_graph(revision)
    return {"graph": graph, "graph_summary": summary(graph.data) if graph.stored else None,
            "graph_changes": graph.changes, "graph_computed": graph.computed}


urlpatterns = [
    path("graph/<path:msgid>/fetch", graph_fetch, name="graph-fetch"),
    path("graph/<path:msgid>/", graph_detail, name="graph-detail"),
]
