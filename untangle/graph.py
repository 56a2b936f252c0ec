"""Dependency graph of patch-series revisions: apply order and its problems.

Input is typed: ``nodes`` maps a revision msgid (its cover letter, or first
patch) to a :class:`Node`, ``edges`` is a list of :class:`Edge`; only
"depends-on" edges shape the order, other kinds are carried along.

Output is a :class:`Graph` (order, :class:`Problem` list, cycles, the edges
marked used/broken) and, for neighbours, :class:`NotNeeded` records: a reason
code and the msgids it names, no English. Sentences are made at the edge
(reviewapp.wording) from the labels shown there.
"""
from __future__ import annotations

import heapq
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from enum import Enum


def plain(obj) -> dict:
    """A dataclass as a dict, as asdict() makes it, for the graph's dataclasses (fields of
    plain values, lists and dicts): without asdict's deep recursion, which was a third of a
    graph's cost at list speed."""
    return {name: copied(getattr(obj, name)) for name in obj.__dataclass_fields__}


def copied(value):
    """A copy of JSON-shaped data (dicts, lists, tuples of plain values); anything else is
    shared, not copied."""
    if isinstance(value, dict):
        return {k: copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copied(v) for v in value]
    if isinstance(value, tuple):
        return tuple(copied(v) for v in value)
    return value


@dataclass
class Node:
    """One revision (or a target that could not be found) as the graph sees it."""
    msgid: str
    subject: str = ""
    version: int | None = None
    complete: bool = True
    series: str | None = None  # family id shared by all revisions of one series
    date: str = ""  # ISO text
    newer: str | None = None  # msgid of the next revision
    files: list[str] | None = None  # touched paths; None: unknown
    base: str | None = None  # base-commit
    missing_patches: list[int] = field(default_factory=list)
    missing: bool = False  # could not be fetched (error says why)
    error: str = ""
    partial_root: str | None = None  # only part of it reached this list; its cover is this absent mail


@dataclass
class Edge:
    """A link between two revisions with its evidence; build() sets used/broken_cycle/redirected_to."""
    source: str
    target: str
    kind: str  # depends-on | related | previous-revision | supersedes | based-on ...
    how: str = ""  # reply | prose | tag | blob
    evidence: str = ""
    evidence_msgid: str = ""
    target_type: str = "msgid"
    referred: str = ""  # what the mail named (a msgid, change-id:vN, patch-id, sha)
    version: int | None = None
    extra: dict = field(default_factory=dict)
    used: bool = False
    broken_cycle: bool = False
    redirected_to: str | None = None

    def to_json(self) -> dict:
        out = plain(self)
        out["from"], out["to"] = out.pop("source"), out.pop("target")
        return out

    @classmethod
    def from_json(cls, d: dict) -> "Edge":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(source=d["from"], target=d["to"], **known)


class ProblemKind(str, Enum):
    MISSING = "missing"
    TWO_REVISIONS = "two-revisions"
    CYCLE = "cycle"
    SUPERSEDED = "superseded"
    INCOMPLETE = "incomplete"
    CONFLICTING_BASE = "conflicting-base"


@dataclass
class Problem:
    kind: str  # a ProblemKind value
    detail: str
    subkind: str = ""  # the graph --json contract folds two-revisions into superseded
    msgid: str | None = None  # the revision it is about, when one
    newest: str | None = None  # superseded: the newest revision

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in ("", None)}


@dataclass
class Graph:
    root: str
    order: list[str]
    problems: list[Problem]
    cycles: list[list[Edge]]
    edges: list[Edge]
    roles: dict[str, str]  # msgid -> root | dependency | missing | replaced | unrelated
    newest: dict[str, str]  # msgid -> its newest known revision


class Reason(str, Enum):
    """Why a neighbour is not needed (NotNeeded.reason)."""
    SAME_SERIES_AS_ROOT = "same-series-as-root"  # another revision of the root's series
    SAME_SERIES_IN_CHAIN = "same-series-in-chain"  # the chain uses `other` of its series
    UNTOUCHED = "untouched"  # nothing referenced, no file shared
    UNREFERENCED = "unreferenced"  # nothing referenced, touched files unknown
    ONLY_MENTIONED = "only-mentioned"  # `other` links to it (`link`), nothing depends on it
    BUILT_ON_ROOT = "built-on-root"  # it depends on the root, not the other way round
    BUILT_ON_OTHER = "built-on-other"  # it is built on `other`, nothing in the chain refers to it
    MENTIONS_ROOT = "mentions-root"  # it only mentions the root
    UNRELATED = "unrelated"  # nothing in the chain refers to it


@dataclass(frozen=True)
class NotNeeded:
    msgid: str
    reason: str  # a Reason value
    other: str | None = None  # the revision the reason names
    link: str | None = None  # ONLY_MENTIONED: the kind of link
    files: int | None = None  # how many files it touches, when known and none is shared
    shared: tuple[str, ...] = ()  # files the chain also changes: it may conflict

    def to_json(self) -> dict:
        return dict(asdict(self), shared=list(self.shared))

    @classmethod
    def from_json(cls, d: dict) -> "NotNeeded":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**dict(known, shared=tuple(d.get("shared") or ())))

# Evidence strength: a cycle is broken at its weakest edge.
_HOW_STRENGTH = {"reply": 0, "prose": 1, "tag": 2, "blob": 3}


Nodes = dict[str, Node]


def label(msgid: str, nodes: Nodes) -> str:
    """Short human name of a revision: subject without [PATCH ...] and the version."""
    node = nodes.get(msgid)
    name = (node.subject if node else "") or msgid
    name = re.sub(r"^\s*(\[[^\]]*\]\s*)+", "", name).strip() or msgid
    version = node.version if node else None
    if version and not re.search(rf"\bv{version}\b", name):
        name = f"{name} v{version}"
    return name


def _family(msgid: str, nodes: Nodes) -> str:
    node = nodes.get(msgid)
    return (node.series if node else None) or msgid


def _sort_key(msgid: str, nodes: Nodes) -> tuple[str, str]:
    node = nodes.get(msgid)
    return ((node.date if node else "") or "", msgid)


def _is_missing(msgid: str, nodes: Nodes) -> bool:
    return msgid not in nodes or nodes[msgid].missing


def _dep_adjacency(edges: list[Edge]) -> dict[str, list[str]]:
    adj: dict[str, list[str]] = defaultdict(list)
    for e in edges:
        if e.kind == "depends-on" and e.source != e.target and e.target not in adj[e.source]:
            adj[e.source].append(e.target)
    return adj


def _reachable(root: str, adj: dict[str, list[str]]) -> set[str]:
    seen, todo = {root}, [root]
    while todo:
        for nxt in adj.get(todo.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _newest(msgid: str, nodes: Nodes) -> str:
    """Follow "newer" links to the last known revision (loops are cut)."""
    seen = {msgid}
    while msgid in nodes and nodes[msgid].newer and nodes[msgid].newer not in seen:
        msgid = nodes[msgid].newer
        seen.add(msgid)
    return msgid


def _files(msgid: str, nodes: Nodes) -> list[str] | None:
    node = nodes.get(msgid)
    return node.files if node else None


# ---------------------------------------------------------------- build steps

def _dedupe_families(root, reached, nodes: Nodes, dep_edges: list[Edge], problems) -> dict[str, str]:
    """Map every dropped revision to the one revision of its family that stays.

    Two revisions of one series never go in one chain: the root's own revision
    stays, otherwise the newest required one (version, then date).
    """
    groups: dict[str, list[str]] = defaultdict(list)
    for m in sorted(reached):
        if not _is_missing(m, nodes):
            groups[_family(m, nodes)].append(m)
    alias: dict[str, str] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        keep = root if root in members else max(
            members, key=lambda m: (nodes[m].version or 0, _sort_key(m, nodes)))
        for m in members:
            if m != keep:
                alias[m] = keep
        needers = sorted({label(e.source, nodes) for e in dep_edges if e.target in members})
        names = ", ".join(label(m, nodes) for m in sorted(members, key=lambda m: nodes[m].version or 0))
        problems.append(Problem(
            ProblemKind.TWO_REVISIONS.value,
            f"{names} are all required (by {', '.join(needers)}); "
            f"only {label(keep, nodes)} is used, two revisions of one series never go in one chain",
            msgid=keep))
    return alias


def _find_cycle(scc: set[str], adj: dict[str, list[str]]) -> list[str]:
    """One simple cycle inside a strongly connected component, as a node path."""
    start = min(scc)
    path, index = [start], {start: 0}
    while True:
        nxt = min(n for n in adj.get(path[-1], []) if n in scc)
        if nxt in index:
            return path[index[nxt]:] + [nxt]
        index[nxt] = len(path)
        path.append(nxt)


def _sccs(nodeset: set[str], adj: dict[str, list[str]]) -> list[set[str]]:
    """Strongly connected components (iterative Tarjan), only those of size > 1."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    counter = 0
    for start in sorted(nodeset):
        if start in index:
            continue
        work = [(start, iter(sorted(n for n in adj.get(start, []) if n in nodeset)))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(n for n in adj.get(nxt, []) if n in nodeset))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = set()
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.add(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(comp)
    return out


def _break_cycles(chain, edge_of: dict[tuple[str, str], Edge], adj, nodes: Nodes, problems,
                  cycles) -> set[tuple[str, str]]:
    """Remove the weakest edge of each cycle until the graph is acyclic.

    Weakest = least evidence (reply < prose < tag < blob), then the edge
    pointing at the most recently posted revision (an older series cannot
    really need a later one), then msgids, so the result is deterministic.
    """
    broken: set[tuple[str, str]] = set()
    while True:
        comps = _sccs(chain, adj)
        if not comps:
            return broken
        comp = min(comps, key=min)
        path = _find_cycle(comp, adj)
        pairs = list(zip(path, path[1:]))
        cycles.append([edge_of[p] for p in pairs])

        ranked = sorted(pairs)  # msgids last ...
        ranked.sort(key=lambda p: _sort_key(p[1], nodes)[0], reverse=True)  # ... newest target ...
        ranked.sort(key=lambda p: _HOW_STRENGTH.get(edge_of[p].how, 1))  # ... weakest evidence first
        drop = ranked[0]
        adj[drop[0]] = [n for n in adj[drop[0]] if n != drop[1]]
        broken.add(drop)
        names = " -> ".join(label(m, nodes) for m in path)
        problems.append(Problem(
            ProblemKind.CYCLE.value,
            f"dependency cycle {names}; ignored '{label(drop[0], nodes)} depends on "
            f"{label(drop[1], nodes)}' ({edge_of[drop].how}) to get an order"))


def _topological(chain: set[str], adj: dict[str, list[str]], nodes: Nodes) -> list[str]:
    """Dependencies first; among ready revisions, older date then msgid first."""
    remaining = {m: len([n for n in adj.get(m, []) if n in chain]) for m in chain}
    dependents: dict[str, list[str]] = defaultdict(list)
    for m in chain:
        for n in adj.get(m, []):
            if n in chain:
                dependents[n].append(m)
    ready = [_sort_key(m, nodes) for m, count in remaining.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, m = heapq.heappop(ready)
        order.append(m)
        for d in dependents[m]:
            remaining[d] -= 1
            if remaining[d] == 0:
                heapq.heappush(ready, _sort_key(d, nodes))
    return order


def _missing_problems(root, reached, nodes: Nodes, dep_edges: list[Edge]) -> list[Problem]:
    out = []
    for m in sorted(reached):
        if not _is_missing(m, nodes):
            continue
        needers = sorted({label(e.source, nodes) for e in dep_edges if e.target == m})
        why = (nodes[m].error if m in nodes else "") or "it is not in the archive that was searched"
        if m == root:
            detail = f"{m} itself could not be fetched: {why}"
        else:
            who = " and ".join(needers) if needers else label(root, nodes)
            detail = f"{who} depends on {m}, which could not be fetched: {why}"
        out.append(Problem(ProblemKind.MISSING.value, detail, msgid=m))
    return out


def _superseded_problems(order, adj, nodes: Nodes) -> list[Problem]:
    out = []
    for m in order:
        newest = _newest(m, nodes)
        if newest == m:
            continue
        node = nodes.get(newest) or Node(newest)
        version = f"v{node.version}" if node.version else f"a newer revision ({newest})"
        when = f" was posted on {node.date[:10]}" if node.date else " exists"
        users = [u for u in order if m in adj.get(u, [])]
        if users:
            detail = f"{label(users[0], nodes)} is built on {label(m, nodes)}; {version}{when}"
        else:
            detail = f"{label(m, nodes)} is not the newest revision; {version}{when}"
        out.append(Problem(ProblemKind.SUPERSEDED.value, detail, msgid=m, newest=newest))
    return out


def _incomplete_problems(order, nodes: Nodes) -> list[Problem]:
    out = []
    for m in order:
        node = nodes.get(m)
        if node is None or node.complete:
            continue
        missing = node.missing_patches
        what = f": patches {', '.join(map(str, missing))} are missing" if missing else ": some patches are missing"
        if node.partial_root:
            what = (f": it reached this list only in part (patches {', '.join(map(str, missing))} and the "
                    f"cover <{node.partial_root}> went to other lists); fetch the whole thread")
        out.append(Problem(ProblemKind.INCOMPLETE.value, f"{label(m, nodes)} is incomplete{what}", msgid=m))
    return out


def _same_commit(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    n = min(len(a), len(b))
    return n >= 7 and a[:n] == b[:n]


def _base_problems(order, adj, nodes: Nodes) -> list[Problem]:
    """Members that do not build on each other but claim different base commits.

    A dependent's base differs from its dependency's by nature (it usually is
    a private tree with the dependency applied), so only unrelated members are
    compared.
    """
    out = []
    closure = {m: _reachable(m, adj) for m in order}
    based = [m for m in order if m in nodes and nodes[m].base]
    for i, a in enumerate(based):
        for b in based[i + 1:]:
            if a in closure[b] or b in closure[a]:
                continue
            ba, bb = nodes[a].base, nodes[b].base
            if not _same_commit(ba, bb):
                out.append(Problem(
                    ProblemKind.CONFLICTING_BASE.value,
                    f"{label(a, nodes)} is based on {ba[:12]} but {label(b, nodes)} is based on "
                    f"{bb[:12]}, and neither builds on the other", msgid=a))
    return out


# ---------------------------------------------------------------- public API

def build(root: str, nodes: Nodes, edges: list[Edge]) -> Graph:
    """Apply order for ``root`` and every problem found on the way.

    order lists the revisions to apply, dependencies first and root last,
    following depends-on edges only; problems have kind in missing |
    two-revisions | cycle | superseded | incomplete | conflicting-base; cycles
    lists, per cycle found, the edges forming it. The returned edges are copies
    of ``edges`` with used / broken_cycle / redirected_to set.
    """
    problems: list[Problem] = []
    cycles: list[list[Edge]] = []
    dep_edges = [e for e in edges if e.kind == "depends-on" and e.source != e.target]
    reached = _reachable(root, _dep_adjacency(dep_edges))
    problems += _missing_problems(root, reached, nodes, dep_edges)

    alias = _dedupe_families(root, reached, nodes, dep_edges, problems)
    # Only incoming edges move to the kept revision: the dropped revision's own
    # dependencies were stated for it, not for the one that stays.
    moved = [replace(e, target=alias.get(e.target, e.target)) for e in dep_edges if e.source not in alias]
    moved = [e for e in moved if e.source != e.target]
    adj = _dep_adjacency(moved)
    chain = {m for m in _reachable(root, adj) if not _is_missing(m, nodes)}
    edge_of: dict[tuple[str, str], Edge] = {}
    for e in moved:
        edge_of.setdefault((e.source, e.target), e)
    broken = _break_cycles(chain, edge_of, adj, nodes, problems, cycles)
    order = _topological(chain, adj, nodes)
    problems += _superseded_problems(order, adj, nodes)
    problems += _incomplete_problems(order, nodes)
    problems += _base_problems(order, adj, nodes)

    roles = {}
    for m in sorted(nodes):
        roles[m] = ("root" if m == root else "missing" if _is_missing(m, nodes) and m in reached
                    else "replaced" if m in alias else "dependency" if m in chain else "unrelated")
    out_edges = []
    for e in edges:
        target = alias.get(e.target, e.target) if e.source not in alias else e.target
        used = (e.kind == "depends-on" and e.source in chain and target in chain
                and (e.source, target) not in broken and e.source != target)
        out_edges.append(replace(e, used=used, broken_cycle=(e.source, target) in broken,
                                 redirected_to=target if target != e.target else None))
    return Graph(root=root, order=order, problems=problems, cycles=cycles, edges=out_edges, roles=roles,
                 newest={m: _newest(m, nodes) for m in nodes})


def newest_chain(graph: Graph, nodes: Nodes) -> list[str]:
    """The same order with every dependency replaced by its newest revision.

    An alternative to offer when dependencies were superseded; the newest
    revisions' own dependencies are not re-resolved here.
    """
    out: list[str] = []
    for m in graph.order:
        pick = m if m == graph.root else _newest(m, nodes)
        if pick not in out:
            out.append(pick)
    return out


def not_needed(root: str, nodes: Nodes, edges: list[Edge], candidates: list[str],
               order: list[str] | None = None) -> list[NotNeeded]:
    """Why each in-flight candidate is not needed by ``root`` (structured, no English).

    A candidate is not needed when no depends-on path leads from root to it.
    When it shares touched files with the chain it still is not needed, but
    the shared files are listed: it may conflict. ``order`` (the apply order,
    default: the depends-on closure) decides which mentions count.
    """
    chain = _reachable(root, _dep_adjacency([e for e in edges if e.source != e.target]))
    members = list(order) if order is not None else sorted(chain)
    chain_files = set().union(*[set(_files(m, nodes) or ()) for m in chain | set(members)])
    chain_families = {_family(m, nodes): m for m in chain}
    out = []
    for c in candidates:
        if c in chain:
            continue
        files = _files(c, nodes)
        shared = tuple(sorted(set(files or ()) & chain_files))
        if shared:
            out.append(replace(_linked_reason(c, root, members, edges, nodes), shared=shared))
        else:
            out.append(_unshared_reason(c, root, chain, chain_families, files, chain_files, edges, nodes))
    return out


def _unshared_reason(c, root, chain, chain_families, files, chain_files, edges: list[Edge],
                     nodes: Nodes) -> NotNeeded:
    fam = _family(c, nodes)
    if fam in chain_families:
        other = chain_families[fam]
        if other == root:
            return NotNeeded(c, Reason.SAME_SERIES_AS_ROOT.value, other=root)
        return NotNeeded(c, Reason.SAME_SERIES_IN_CHAIN.value, other=other)
    mentions = [e for e in edges if e.target == c and e.source in chain]
    files_known = bool(files) and bool(chain_files)
    count = len(files) if files_known else None
    if not mentions:
        return NotNeeded(c, (Reason.UNTOUCHED if files_known else Reason.UNREFERENCED).value)
    first = mentions[0]
    return NotNeeded(c, Reason.ONLY_MENTIONED.value, other=first.source, link=first.kind or "related", files=count)


def _linked_reason(c, root, order: list[str], edges: list[Edge], nodes: Nodes) -> NotNeeded:
    """For a candidate sharing files with the chain: how it relates to the chain."""
    mention = next((e for e in edges if e.target == c and e.source in order), None)
    if mention:
        return NotNeeded(c, Reason.ONLY_MENTIONED.value, other=mention.source, link=mention.kind)
    outgoing = [e for e in edges if e.source == c and e.target in nodes]
    if any(e.target == root and e.kind == "depends-on" for e in outgoing):
        return NotNeeded(c, Reason.BUILT_ON_ROOT.value, other=root)
    dep = next((e for e in outgoing if e.kind == "depends-on"), None)
    if dep:
        return NotNeeded(c, Reason.BUILT_ON_OTHER.value, other=dep.target)
    if any(e.target == root for e in outgoing):
        return NotNeeded(c, Reason.MENTIONS_ROOT.value, other=root)
    return NotNeeded(c, Reason.UNRELATED.value)
