"""Apply order, problems and "not needed" explanations over plain node/edge data."""
from __future__ import annotations

import random

import pytest

from tests.support.lore_mail import plain_body, read_mails
from untangle.deps import discover_text_edges
from reviewapp.wording import not_needed_sentence
from untangle.graph import Edge, Node, NotNeeded, Reason, build, label, newest_chain, not_needed

UFFD = "20250404154352.23078-1-kalyazin@amazon.com"
FUAD7 = "20250318161823.4005529-1-tabba@google.com"
FUAD8 = "20250410.1-1-tabba@google.com"
JAMES = "20250109204929.1106563-1-jthoughton@google.com"
RESTRICTED = "20250117163001.2326672-1-tabba@google.com"


def node(subject, version, series, date, **more):
    return Node(subject, subject=subject, version=version, series=series, date=date, **more)


def dep(a, b, how="prose", kind="depends-on"):
    return Edge(a, b, kind=kind, how=how, evidence=f"{a} -> {b}")


def unneeded(root, nodes, edges, candidates):
    """The sentences a page shows for not_needed()'s structured reasons."""
    names = {m: label(m, nodes) for m in nodes}
    return [not_needed_sentence(n, root, names) for n in not_needed(root, nodes, edges, candidates)]


def story_nodes() -> dict:
    return {
        UFFD: node("[PATCH v3 0/6] KVM: guest_memfd: support for uffd minor", 3, "uffd", "2025-04-04T15:43:52+00:00",
                   files=["virt/kvm/guest_memfd.c", "mm/userfaultfd.c", "mm/shmem.c"],
                   base="3cc51efc17a2c41a480eed36b31c1773936717e0"),
        FUAD7: node("KVM: Mapping guest_memfd backed memory at the host", 7, "mapping", "2025-03-18T16:18:23+00:00",
                    files=["virt/kvm/guest_memfd.c", "mm/swap.c"],
                    base="4701f33a10702d5fc577c32434eb62adde0a1ae1"),
        JAMES: node("KVM: Introduce KVM Userfault", 2, "userfault", "2025-01-09T20:49:29+00:00",
                    files=["virt/kvm/kvm_main.c", "arch/x86/kvm/mmu/mmu.c"]),
        RESTRICTED: node("restricted mapping", 1, "restricted", "2025-01-17T16:30:01+00:00",
                         files=["include/linux/kvm_host.h"]),
    }


def problems_of(graph, kind):
    return [p.detail for p in graph.problems if p.kind == kind]


# ---------------------------------------------------------------- order

def test_uffd_minor_applies_after_fuad_v7_and_context_links_are_not_in_the_chain():
    edges = [dep(UFFD, FUAD7), dep(UFFD, JAMES, kind="related"), dep(FUAD7, RESTRICTED, kind="related")]
    g = build(UFFD, story_nodes(), edges)
    assert g.order == [FUAD7, UFFD]
    assert g.problems == [] and g.cycles == []
    assert g.roles == {UFFD: "root", FUAD7: "dependency", JAMES: "unrelated", RESTRICTED: "unrelated"}
    used = {(e.source, e.target): e.used for e in g.edges}
    assert used == {(UFFD, FUAD7): True, (UFFD, JAMES): False, (FUAD7, RESTRICTED): False}


def test_graph_from_the_real_cover_letters_orders_fuad_before_uffd():
    mails = {FUAD7: plain_body(read_mails("transcribed/fuad-v7-cover.eml")[0]),
             UFFD: plain_body(read_mails("kvm-gmem-uffd-minor-v3.mbox")[0])}
    edges = [Edge(m, e.target, kind=e.kind, how=e.how, evidence=e.evidence)
             for m, body in mails.items() for e in discover_text_edges(m, body) if e.target_type == "msgid"]
    g = build(UFFD, story_nodes(), edges)
    assert g.order == [FUAD7, UFFD]  # restricted mapping is not pulled in by Fuad's "base for [2]"
    assert unneeded(UFFD, story_nodes(), edges, [RESTRICTED, JAMES, FUAD7]) == [
        "restricted mapping v1 is not needed by KVM: guest_memfd: support for uffd minor v3: "
        "it is only mentioned (related link from KVM: Mapping guest_memfd backed memory at the host v7), "
        "nothing depends on it, and its only file is not touched by the chain",
        "KVM: Introduce KVM Userfault v2 is not needed by KVM: guest_memfd: support for uffd minor v3: "
        "it is only mentioned (related link from KVM: guest_memfd: support for uffd minor v3), nothing depends "
        "on it, and none of its 2 files is touched by the chain",
    ]


def test_transitive_dependencies_come_first():
    nodes = {m: node(m, 1, m, d) for m, d in [("r", "2025-03"), ("a", "2025-02"), ("b", "2025-01")]}
    assert build("r", nodes, [dep("r", "a"), dep("a", "b")]).order == ["b", "a", "r"]


def test_order_is_stable_by_date_then_msgid_whatever_the_edge_order():
    nodes = {"r": node("root", 1, "r", "2025-05-01"),
             "late": node("late", 1, "late", "2025-04-01"),
             "early": node("early", 1, "early", "2025-01-01"),
             "tie-b": node("tie b", 1, "tie-b", "2025-02-01"),
             "tie-a": node("tie a", 1, "tie-a", "2025-02-01")}
    edges = [dep("r", m) for m in ["late", "early", "tie-b", "tie-a"]]
    expected = ["early", "tie-a", "tie-b", "late", "r"]
    rng = random.Random(7)
    for _ in range(10):
        rng.shuffle(edges)
        assert build("r", nodes, edges).order == expected


def test_a_dependency_ready_later_waits_for_its_own_dependency():
    # "old" is the oldest but depends on "new": it cannot go first
    nodes = {"r": node("r", 1, "r", "2025-06"), "old": node("old", 1, "old", "2025-01"),
             "new": node("new", 1, "new", "2025-03"), "mid": node("mid", 1, "mid", "2025-02")}
    g = build("r", nodes, [dep("r", "old"), dep("r", "mid"), dep("old", "new")])
    assert g.order == ["mid", "new", "old", "r"]


# ---------------------------------------------------------------- problems

def test_cycle_is_reported_with_its_edges_and_broken_at_the_weakest_edge():
    nodes = {m: node(m, 1, m, d) for m, d in [("r", "2025-04"), ("a", "2025-02"), ("b", "2025-03")]}
    edges = [dep("r", "a", "tag"), dep("a", "b", "tag"), dep("b", "a", "prose")]
    g = build("r", nodes, edges)
    assert [(e.source, e.target) for e in g.cycles[0]] in ([("a", "b"), ("b", "a")], [("b", "a"), ("a", "b")])
    [detail] = problems_of(g, "cycle")
    assert "cycle" in detail and "ignored 'b v1 depends on a v1' (prose)" in detail
    assert g.order == ["b", "a", "r"]
    [broken] = [e for e in g.edges if e.broken_cycle]
    assert (broken.source, broken.target, broken.how, broken.used) == ("b", "a", "prose", False)


def test_three_node_cycle_breaks_deterministically():
    nodes = {m: node(m, 1, m, "2025-01") for m in ["r", "a", "b", "c"]}
    edges = [dep("r", "a"), dep("a", "b"), dep("b", "c"), dep("c", "a")]
    orders = {tuple(build("r", nodes, e).order) for e in (edges, edges[::-1], edges[1:] + edges[:1])}
    assert len(orders) == 1 and len(next(iter(orders))) == 4


def test_missing_dependency_is_a_problem_in_plain_words_and_not_applied():
    nodes = story_nodes()
    nodes[FUAD7] = Node(FUAD7, missing=True, error="lore answered 404", series="mapping")
    g = build(UFFD, nodes, [dep(UFFD, FUAD7), dep(UFFD, "nowhere@example.org")])
    assert g.order == [UFFD]
    details = problems_of(g, "missing")
    assert details == [
        f"KVM: guest_memfd: support for uffd minor v3 depends on {FUAD7}, which could not be fetched: lore answered 404",
        "KVM: guest_memfd: support for uffd minor v3 depends on nowhere@example.org, which could not be fetched: "
        "it is not in the archive that was searched",
    ]


def test_superseded_dependency_names_the_newer_revision_and_its_date():
    nodes = story_nodes()
    nodes[FUAD7].newer = FUAD8
    nodes[FUAD8] = node("KVM: Mapping guest_memfd backed memory at the host", 8, "mapping", "2025-04-10T09:00:00+00:00")
    g = build(UFFD, nodes, [dep(UFFD, FUAD7)])
    assert g.order == [FUAD7, UFFD]
    assert problems_of(g, "superseded") == [
        "KVM: guest_memfd: support for uffd minor v3 is built on KVM: Mapping guest_memfd backed memory at the host "
        "v7; v8 was posted on 2025-04-10"]
    assert newest_chain(g, nodes) == [FUAD8, UFFD]


def test_newest_chain_follows_newer_to_the_end_and_survives_loops():
    nodes = {"r": node("r", 1, "r", "2025-09"), "a1": node("a", 1, "a", "2025-01", newer="a2"),
             "a2": node("a", 2, "a", "2025-02", newer="a3"), "a3": node("a", 3, "a", "2025-03", newer="a2")}
    g = build("r", nodes, [dep("r", "a1")])
    assert newest_chain(g, nodes) in (["a3", "r"], ["a2", "r"])
    nodes["a3"].newer = None
    assert newest_chain(g, nodes) == ["a3", "r"]


def test_two_revisions_of_one_series_never_share_a_chain():
    nodes = {"r": node("r", 1, "r", "2025-09"), "x": node("x", 1, "x", "2025-08"),
             "m7": node("mapping", 7, "mapping", "2025-03"), "m8": node("mapping", 8, "mapping", "2025-04")}
    g = build("r", nodes, [dep("r", "m7"), dep("r", "x"), dep("x", "m8")])
    assert g.order == ["m8", "x", "r"]
    [detail] = problems_of(g, "two-revisions")
    assert "mapping v7, mapping v8 are all required" in detail and "only mapping v8 is used" in detail
    edge = next(e for e in g.edges if e.target == "m7")
    assert edge.redirected_to == "m8" and edge.used


def test_root_revision_wins_over_an_older_revision_it_names_as_dependency():
    nodes = {"r3": node("r", 3, "r", "2025-03"), "r2": node("r", 2, "r", "2025-02")}
    g = build("r3", nodes, [dep("r3", "r2")])
    assert g.order == ["r3"] and problems_of(g, "two-revisions")


def test_incomplete_revision_is_reported():
    nodes = story_nodes()
    nodes[FUAD7].complete, nodes[FUAD7].missing_patches = False, [4, 7]
    g = build(UFFD, nodes, [dep(UFFD, FUAD7)])
    assert problems_of(g, "incomplete") == [
        "KVM: Mapping guest_memfd backed memory at the host v7 is incomplete: patches 4, 7 are missing"]


def test_conflicting_base_only_between_members_that_do_not_build_on_each_other():
    nodes = story_nodes()
    g = build(UFFD, nodes, [dep(UFFD, FUAD7)])
    assert problems_of(g, "conflicting-base") == []  # a dependant's base differs by nature
    nodes["other"] = node("other series", 2, "other", "2025-03-01", base="0ad2507d5d93")
    g = build(UFFD, nodes, [dep(UFFD, FUAD7), dep(UFFD, "other")])
    [detail] = problems_of(g, "conflicting-base")
    assert "4701f33a1070" in detail and "0ad2507d5d93" in detail
    nodes["other"].base = "4701f33a10702d5f"  # same commit, abbreviated
    assert problems_of(build(UFFD, nodes, [dep(UFFD, FUAD7), dep(UFFD, "other")]), "conflicting-base") == []


def test_root_that_could_not_be_fetched_gives_an_empty_order_and_says_so():
    nodes = {"r": Node("r", missing=True, error="no such message", series="r")}
    g = build("r", nodes, [])
    assert g.order == [] and problems_of(g, "missing") == ["r itself could not be fetched: no such message"]


def test_self_edges_and_other_kinds_do_not_change_the_order():
    nodes = story_nodes()
    g = build(UFFD, nodes, [dep(UFFD, UFFD), dep(UFFD, JAMES, kind="previous-revision"), dep(UFFD, FUAD7)])
    assert g.order == [FUAD7, UFFD]


# ---------------------------------------------------------------- unneeded

def test_unneeded_skips_needed_series_and_warns_about_ones_sharing_files():
    nodes = story_nodes()
    nodes["shmem"] = node("shmem rework", 1, "shmem", "2025-03-30", files=["mm/shmem.c"])
    edges = [dep(UFFD, FUAD7)]
    out = unneeded(UFFD, nodes, edges, [FUAD7, "shmem", RESTRICTED])
    assert out == ["shmem rework v1 is not needed by KVM: guest_memfd: support for uffd minor v3: "
                   "nothing in its chain refers to it; it touches 1 file(s) the chain also changes "
                   "(mm/shmem.c), so it may conflict",
                   "restricted mapping v1 is not needed by KVM: guest_memfd: support for uffd minor v3: "
                   "nothing of it is referenced or touched"]


def test_unneeded_explains_other_revisions_of_chain_members():
    nodes = story_nodes()
    nodes[FUAD8] = node("KVM: Mapping guest_memfd backed memory at the host", 8, "mapping", "2025-04-10")
    nodes["uffd2"] = node("KVM: guest_memfd: support for uffd minor", 2, "uffd", "2025-04-02")
    out = unneeded(UFFD, nodes, [dep(UFFD, FUAD7)], [FUAD8, "uffd2"])
    assert out[0].endswith("the chain uses KVM: Mapping guest_memfd backed memory at the host v7 of the same series")
    assert out[1].endswith("it is another revision of the same series")


@pytest.mark.parametrize("files", [None, []])
def test_unneeded_without_file_data_says_files_are_unknown(files):
    nodes = {"r": node("root", 1, "r", "2025-01"), "c": node("cand", 1, "c", "2025-01", files=files)}
    assert unneeded("r", nodes, [], ["c"]) == [
        "cand v1 is not needed by root v1: nothing of it is referenced (touched files unknown)"]


def test_not_needed_reasons_are_data_naming_the_revisions_not_sentences():
    nodes = story_nodes()
    nodes["shmem"] = node("shmem rework", 1, "shmem", "2025-03-30", files=["mm/shmem.c"])
    edges = [dep(UFFD, FUAD7), dep(UFFD, "shmem", kind="related")]
    out = not_needed(UFFD, nodes, edges, ["shmem", RESTRICTED], order=[FUAD7, UFFD])
    assert out == [NotNeeded("shmem", Reason.ONLY_MENTIONED.value, other=UFFD, link="related",
                             shared=("mm/shmem.c",)),
                   NotNeeded(RESTRICTED, Reason.UNTOUCHED.value)]
    assert NotNeeded.from_json(out[0].to_json()) == out[0]
    assert unneeded(UFFD, nodes, edges, ["shmem"])[0].endswith(
        "; it touches 1 file(s) the chain also changes (mm/shmem.c), so it may conflict")
