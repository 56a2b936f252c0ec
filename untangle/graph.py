"""Dependency graph of patch-series revisions: apply order and its problems.

Input is plain data: ``nodes`` maps a revision msgid (its cover letter, or
first patch) to a dict with "subject", "version", "complete", "series" (family
id shared by all revisions of one series), "date" (ISO text), optional
"state" ("missing" + "error" when it could not be fetched), "newer" (msgid of
the next revision or None), "files" (touched paths), "base" (base-commit).
``edges`` are dicts with "from", "to", "kind", "how", "evidence"; only
"depends-on" edges shape the order, other kinds are carried along.

Output is plain dicts, safe to store as JSON.
"""
from __future__ import annotations

import heapq
import re
from collections import defaultdict

# Evidence strength: a cycle is broken at its weakest edge.
_HOW_STRENGTH = {"reply": 0, "prose": 1, "tag": 2, "blob": 3}


def label(msgid: str, nodes: dict) -> str:
    """Short human name of a revision: subject without [PATCH ...] and the version."""
    node = nodes.get(msgid) or {}
    name = node.get("name") or node.get("subject") or msgid
    name = re.sub(r"^\s*(\[[^\]]*\]\s*)+", "", name).strip() or msgid
    version = node.get("version")
    if version and not re.search(rf"\bv{version}\b", name):
        name = f"{name} v{version}"
    return name


def _family(msgid: str, nodes: dict) -> str:
    return (nodes.get(msgid) or {}).get("series") or msgid


def _sort_key(msgid: str, nodes: dict) -> tuple[str, str]:
    return ((nodes.get(msgid) or {}).get("date") or "", msgid)


def _is_missing(msgid: str, nodes: dict) -> bool:
    return msgid not in nodes or nodes[msgid].get("state") == "missing"


def _dep_adjacency(edges: list[dict]) -> dict[str, list[str]]:
    adj: dict[str, list[str]] = defaultdict(list)
    for e in edges:
        if e.get("kind") == "depends-on" and e["from"] != e["to"] and e["to"] not in adj[e["from"]]:
            adj[e["from"]].append(e["to"])
    return adj


def _reachable(root: str, adj: dict[str, list[str]]) -> set[str]:
    seen, todo = {root}, [root]
    while todo:
        for nxt in adj.get(todo.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _newest(msgid: str, nodes: dict) -> str:
    """Follow "newer" links to the last known revision (loops are cut)."""
    seen = {msgid}
    while (nodes.get(msgid) or {}).get("newer") and nodes[msgid]["newer"] not in seen:
        msgid = nodes[msgid]["newer"]
        seen.add(msgid)
    return msgid


# ---------------------------------------------------------------- build steps

def _dedupe_families(root, reached, nodes, dep_edges, problems) -> dict[str, str]:
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
            members, key=lambda m: (nodes[m].get("version") or 0, _sort_key(m, nodes)))
        for m in members:
            if m != keep:
                alias[m] = keep
        needers = sorted({label(e["from"], nodes) for e in dep_edges if e["to"] in members})
        names = ", ".join(label(m, nodes) for m in sorted(members, key=lambda m: nodes[m].get("version") or 0))
        problems.append({
            "kind": "two-revisions",
            "detail": f"{names} are all required (by {', '.join(needers)}); "
                      f"only {label(keep, nodes)} is used, two revisions of one series never go in one chain",
        })
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


def _break_cycles(chain, edge_of, adj, nodes, problems, cycles) -> set[tuple[str, str]]:
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
        ranked.sort(key=lambda p: _HOW_STRENGTH.get(edge_of[p].get("how"), 1))  # ... weakest evidence first
        drop = ranked[0]
        adj[drop[0]] = [n for n in adj[drop[0]] if n != drop[1]]
        broken.add(drop)
        names = " -> ".join(label(m, nodes) for m in path)
        problems.append({
            "kind": "cycle",
            "detail": f"dependency cycle {names}; ignored '{label(drop[0], nodes)} depends on "
                      f"{label(drop[1], nodes)}' ({edge_of[drop].get('how')}) to get an order",
        })


def _topological(chain: set[str], adj: dict[str, list[str]], nodes: dict) -> list[str]:
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


def _missing_problems(root, reached, nodes, dep_edges) -> list[dict]:
    out = []
    for m in sorted(reached):
        if not _is_missing(m, nodes):
            continue
        needers = sorted({label(e["from"], nodes) for e in dep_edges if e["to"] == m})
        why = (nodes.get(m) or {}).get("error") or "it is not in the archive that was searched"
        if m == root:
            detail = f"{m} itself could not be fetched: {why}"
        else:
            who = " and ".join(needers) if needers else label(root, nodes)
            detail = f"{who} depends on {m}, which could not be fetched: {why}"
        out.append({"kind": "missing", "detail": detail})
    return out


def _superseded_problems(order, adj, nodes) -> list[dict]:
    out = []
    for m in order:
        newest = _newest(m, nodes)
        if newest == m:
            continue
        node = nodes.get(newest) or {}
        version = f"v{node['version']}" if node.get("version") else f"a newer revision ({newest})"
        when = f" was posted on {node['date'][:10]}" if node.get("date") else " exists"
        users = [u for u in order if m in adj.get(u, [])]
        if users:
            detail = f"{label(users[0], nodes)} is built on {label(m, nodes)}; {version}{when}"
        else:
            detail = f"{label(m, nodes)} is not the newest revision; {version}{when}"
        out.append({"kind": "superseded", "detail": detail, "msgid": m, "newest": newest})
    return out


def _incomplete_problems(order, nodes) -> list[dict]:
    out = []
    for m in order:
        node = nodes.get(m) or {}
        if node.get("complete", True):
            continue
        missing = node.get("missing_patches")
        what = f": patches {', '.join(map(str, missing))} are missing" if missing else ": some patches are missing"
        out.append({"kind": "incomplete", "detail": f"{label(m, nodes)} is incomplete{what}"})
    return out


def _same_commit(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    n = min(len(a), len(b))
    return n >= 7 and a[:n] == b[:n]


def _base_problems(order, adj, nodes) -> list[dict]:
    """Members that do not build on each other but claim different base commits.

    A dependent's base differs from its dependency's by nature (it usually is
    a private tree with the dependency applied), so only unrelated members are
    compared.
    """
    out = []
    closure = {m: _reachable(m, adj) for m in order}
    based = [m for m in order if (nodes.get(m) or {}).get("base")]
    for i, a in enumerate(based):
        for b in based[i + 1:]:
            if a in closure[b] or b in closure[a]:
                continue
            ba, bb = nodes[a]["base"], nodes[b]["base"]
            if not _same_commit(ba, bb):
                out.append({"kind": "conflicting-base",
                            "detail": f"{label(a, nodes)} is based on {ba[:12]} but {label(b, nodes)} is based on "
                                      f"{bb[:12]}, and neither builds on the other"})
    return out


# ---------------------------------------------------------------- public API

def build(root: str, nodes: dict, edges: list[dict]) -> dict:
    """Apply order for ``root`` and every problem found on the way.

    Returns {"root", "nodes", "edges", "order", "problems", "cycles"}:
    order lists the revisions to apply, dependencies first and root last,
    following depends-on edges only; problems are {"kind", "detail"} with
    kind in missing | two-revisions | cycle | superseded | incomplete |
    conflicting-base; cycles lists, per cycle found, the edges forming it.
    """
    problems: list[dict] = []
    cycles: list[list[dict]] = []
    dep_edges = [e for e in edges if e.get("kind") == "depends-on" and e["from"] != e["to"]]
    reached = _reachable(root, _dep_adjacency(dep_edges))
    problems += _missing_problems(root, reached, nodes, dep_edges)

    alias = _dedupe_families(root, reached, nodes, dep_edges, problems)
    # Only incoming edges move to the kept revision: the dropped revision's own
    # dependencies were stated for it, not for the one that stays.
    moved = [dict(e, to=alias.get(e["to"], e["to"])) for e in dep_edges if e["from"] not in alias]
    moved = [e for e in moved if e["from"] != e["to"]]
    adj = _dep_adjacency(moved)
    chain = {m for m in _reachable(root, adj) if not _is_missing(m, nodes)}
    edge_of = {}
    for e in moved:
        edge_of.setdefault((e["from"], e["to"]), e)
    broken = _break_cycles(chain, edge_of, adj, nodes, problems, cycles)
    order = _topological(chain, adj, nodes)
    problems += _superseded_problems(order, adj, nodes)
    problems += _incomplete_problems(order, nodes)
    problems += _base_problems(order, adj, nodes)

    out_nodes = []
    for m, node in sorted(nodes.items()):
        role = ("root" if m == root else "missing" if _is_missing(m, nodes) and m in reached
                else "replaced" if m in alias else "dependency" if m in chain else "unrelated")
        out_nodes.append(dict(node, msgid=m, role=role, newest=_newest(m, nodes)))
    out_edges = []
    for e in edges:
        target = alias.get(e["to"], e["to"]) if e["from"] not in alias else e["to"]
        used = (e.get("kind") == "depends-on" and e["from"] in chain and target in chain
                and (e["from"], target) not in broken and e["from"] != target)
        extra = {"used": used, "broken_cycle": (e["from"], target) in broken}
        if target != e["to"]:
            extra["redirected_to"] = target
        out_edges.append(dict(e, **extra))
    return {"root": root, "nodes": out_nodes, "edges": out_edges, "order": order,
            "problems": problems, "cycles": cycles}


def newest_chain(graph: dict, nodes: dict) -> list[str]:
    """The same order with every dependency replaced by its newest revision.

    An alternative to offer when dependencies were superseded; the newest
    revisions' own dependencies are not re-resolved here.
    """
    out: list[str] = []
    for m in graph["order"]:
        pick = m if m == graph["root"] else _newest(m, nodes)
        if pick not in out:
            out.append(pick)
    return out


def unneeded(root: str, nodes: dict, edges: list[dict], candidates: list[str]) -> list[str]:
    """Plain-word reasons why in-flight candidates are not needed by ``root``.

    A candidate is unneeded when no depends-on path leads from root to it and,
    when touched files are known, it touches none of the files the root's
    chain touches (sharing files means it may conflict: not reported here).
    """
    adj = _dep_adjacency([e for e in edges if e["from"] != e["to"]])
    chain = _reachable(root, adj)
    chain_files = set().union(*[set((nodes.get(m) or {}).get("files") or ()) for m in chain])
    chain_families = {_family(m, nodes): m for m in chain}
    out = []
    for c in candidates:
        if c in chain:
            continue
        files = (nodes.get(c) or {}).get("files")
        if files is not None and chain_files and set(files) & chain_files:
            continue
        out.append(f"{label(c, nodes)} is not needed by {label(root, nodes)}: "
                   + _unneeded_reason(c, root, chain, chain_families, files, chain_files, edges, nodes))
    return out


def _unneeded_reason(c, root, chain, chain_families, files, chain_files, edges, nodes) -> str:
    fam = _family(c, nodes)
    if fam in chain_families:
        other = chain_families[fam]
        if other == root:
            return "it is another revision of the same series"
        return f"the chain uses {label(other, nodes)} of the same series"
    mentions = [e for e in edges if e["to"] == c and e["from"] in chain]
    files_known = bool(files) and bool(chain_files)
    if not mentions:
        return "nothing of it is referenced or touched" if files_known else \
            "nothing of it is referenced (touched files unknown)"
    first = mentions[0]
    reason = (f"it is only mentioned ({first.get('kind') or 'related'} link from {label(first['from'], nodes)}), "
              "nothing depends on it")
    if files_known:
        which = "its only file is not" if len(files) == 1 else f"none of its {len(files)} files is"
        return f"{reason}, and {which} touched by the chain"
    return reason
