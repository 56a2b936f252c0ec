"""Series in flight together on one list: which pairs could collide (pure).

Two open series are compared only when their applied chains change a common file: an
inverted index from path to series, so the work follows the overlaps, not N^2. A path
that very many series change (a MAINTAINERS entry each) still pairs them all; the cap on
pairs says how many were left out rather than running away."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations


@dataclass
class Pairs:
    pairs: list[tuple[str, str]]  # (a, b) with a < b, sorted
    shared: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # the files both change
    left_out: int = 0  # pairs past max_pairs, not compared


def candidate_pairs(files: dict[str, set[str]], max_pairs: int = 20000) -> Pairs:
    """Pairs of series (keys of files) that change at least one common path."""
    by_path: dict[str, list[str]] = defaultdict(list)
    for series, paths in files.items():
        for path in paths:
            by_path[path].append(series)
    shared: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(by_path):
        for a, b in combinations(sorted(set(by_path[path])), 2):
            shared[(a, b)].append(path)
    ordered = sorted(shared)
    kept = ordered[:max_pairs]
    return Pairs(kept, {p: shared[p] for p in kept}, len(ordered) - len(kept))


def stack_order(series: list[tuple[str, str, list[str]]]) -> list[str]:
    """Names in the order an integration branch stacks them: a series after every open
    series its chain contains (dependency order), else by date. series: (name, date as
    ISO text, the msgids of its chain, itself included)."""
    names = {name for name, _d, _c in series}
    needs = {name: {m for m in chain if m in names and m != name} for name, _d, chain in series}
    dates = {name: date for name, date, _c in series}
    done: list[str] = []
    placed: set[str] = set()
    pending = sorted(names, key=lambda n: (dates[n], n))
    while pending:
        ready = [n for n in pending if needs[n] <= placed] or pending[:1]  # a cycle: by date
        first = ready[0]
        done.append(first)
        placed.add(first)
        pending.remove(first)
    return done
