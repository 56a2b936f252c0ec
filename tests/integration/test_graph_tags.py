"""The graph on synthetic mails: one case per formal tag, cycles, self-references,
supersession, late replies, the blob rule and fetching from a real public-inbox."""
import pytest

from reviewapp.models import GraphSnapshot, Patch, Revision
from reviewapp.services.graph import GraphError, chain_for, graph_for, recompute_affected
from reviewapp.services.ingest import ingest
from tests.support.public_inbox import serve_inbox

pytestmark = pytest.mark.django_db

ANN = "Ann Dev <ann@example.org>"
BOB = "Bob Hack <bob@example.org>"
CAROL = "Carol Review <carol@example.org>"


def mail(msgid, subject, body, *, reply_to=None, frm=ANN, day=1, sec=0):
    hdr = [f"From: {frm}", f"Subject: {subject}", f"Message-ID: <{msgid}>",
           f"Date: Mon, {day} Sep 2025 10:00:{sec:02d} +0000"]
    if reply_to:
        hdr += [f"In-Reply-To: <{reply_to}>", f"References: <{reply_to}>"]
    return ("\n".join(hdr) + "\n\n" + body).encode()


def diff(path, old, new, line):
    return (f"---\n {path} | 1 +\n\ndiff --git a/{path} b/{path}\nindex {old}..{new} 100644\n"
            f"--- a/{path}\n+++ b/{path}\n@@ -1 +1,2 @@\n a\n+{line}\n-- \n2.43.0\n")


def posting(stem, title, *, version=1, cover="", files=(("f.c", "1111111", "2222222"),),
            frm=ANN, day=1, patch_text=None, reply_to=None):
    """A cover and one patch per file; returns the raw mails (cover msgid = f"{stem}-0@ex.org")."""
    v = f" v{version}" if version > 1 else ""
    n = len(files)
    head = f"{stem}-0@ex.org"
    mails = [mail(head, f"[PATCH{v} 0/{n}] {title}", (cover or "Some work.") + "\n",
                  frm=frm, day=day, reply_to=reply_to)]
    for i, (path, old, new) in enumerate(files, 1):
        text = (patch_text or {}).get(i, "")
        body = f"Change {i} of {title}.\n\n{text}Signed-off-by: {frm}\n" + diff(path, old, new, f"{stem} {i}")
        mails.append(mail(f"{stem}-{i}@ex.org", f"[PATCH{v} {i}/{n}] part {i} of {title}", body,
                          reply_to=head, frm=frm, day=day, sec=i))
    return mails


def edges_of(data, kind=None):
    return [e for e in data["edges"] if kind is None or e["kind"] == kind]


def node(data, msgid):
    return next(n for n in data["nodes"] if n["msgid"] == msgid)


def rev(msgid):
    return Revision.objects.get(msgid=msgid)


# ---------------------------------------------------------------- formal tags

def test_base_commit_tag_is_a_base_node_not_a_dependency():
    ingest(posting("a", "mm: a", cover="base-commit: 0123456789abcdef0123456789abcdef01234567"))
    data = graph_for(rev("a-0@ex.org"))
    base = node(data, "0123456789abcdef0123456789abcdef01234567")
    assert base["kind"] == "base" and base["role"] == "base"
    [e] = edges_of(data, "base")
    assert (e["how"], e["evidence"]) == ("tag", "base-commit: 0123456789abcdef0123456789abcdef01234567")
    assert data["order"] == ["a-0@ex.org"]


def test_prerequisite_change_id_picks_the_named_version_and_flags_the_newer_one():
    ingest(posting("a1", "mm: helpers", cover="change-id: 20250101-helpers-abc123", day=1))
    ingest(posting("a2", "mm: helpers", version=2, cover="change-id: 20250101-helpers-abc123", day=3,
                   files=(("f.c", "1111111", "3333333"),)))
    ingest(posting("b", "mm: user", frm=BOB, day=4, files=(("g.c", "4444444", "5555555"),),
                   cover="prerequisite-change-id: 20250101-helpers-abc123:v1"))
    data = graph_for(rev("b-0@ex.org"))
    [e] = edges_of(data, "depends-on")
    assert (e["to"], e["how"], e["referred"]) == ("a1-0@ex.org", "tag", "20250101-helpers-abc123:v1")
    assert data["order"] == ["a1-0@ex.org", "b-0@ex.org"]
    assert node(data, "a1-0@ex.org")["state"] == "superseded" and node(data, "a1-0@ex.org")["newer"] == "a2-0@ex.org"
    assert data["newest_order"] == ["a2-0@ex.org", "b-0@ex.org"]
    assert any(p["kind"] == "superseded" and "v2" in p["detail"] for p in data["problems"])


@pytest.mark.parametrize("written", ["<a-0@ex.org>", "a-0@ex.org"])
def test_prerequisite_message_id_with_or_without_brackets(written):
    ingest(posting("a", "mm: a"))
    ingest(posting("b", "mm: b", frm=BOB, cover=f"prerequisite-message-id: {written}",
                   files=(("g.c", "4444444", "5555555"),)))
    data = graph_for(rev("b-0@ex.org"))
    assert [(e["to"], e["how"]) for e in edges_of(data, "depends-on")] == [("a-0@ex.org", "tag")]
    assert data["order"] == ["a-0@ex.org", "b-0@ex.org"]


def test_prerequisite_patch_id_resolves_through_the_patch_to_its_revision():
    ingest(posting("a", "mm: a", files=(("f.c", "1111111", "2222222"), ("h.c", "6666666", "7777777"))))
    pid = Patch.objects.get(message__msgid="a-2@ex.org").patch_id
    assert pid
    ingest(posting("b", "mm: b", frm=BOB, files=(("g.c", "4444444", "5555555"),),
                   cover=f"prerequisite-patch-id: {pid}"))
    data = graph_for(rev("b-0@ex.org"))
    [e] = edges_of(data, "depends-on")
    assert (e["to"], e["referred"], e["target_type"]) == ("a-0@ex.org", pid, "patch-id")
    assert data["order"] == ["a-0@ex.org", "b-0@ex.org"]


def test_based_on_lines_in_a_patch_any_spelling_name_several_dependencies():
    ingest(posting("a", "mm: a"))
    ingest(posting("c", "mm: c", frm=CAROL, files=(("k.c", "8888888", "9999999"),)))
    ingest(posting("b", "mm: b", frm=BOB, files=(("g.c", "4444444", "5555555"), ("m.c", "aaaaaaa", "bbbbbbb")),
                   patch_text={2: "Based-On: a-0@ex.org\nBased-on: <c-0@ex.org>\n\n"}))
    data = graph_for(rev("b-0@ex.org"))
    deps = sorted((e["to"], e["how"], e["evidence_msgid"]) for e in edges_of(data, "depends-on"))
    assert deps == [("a-0@ex.org", "tag", "b-2@ex.org"), ("c-0@ex.org", "tag", "b-2@ex.org")]
    assert data["order"][-1] == "b-0@ex.org" and set(data["order"][:2]) == {"a-0@ex.org", "c-0@ex.org"}


def test_depends_on_a_patch_url_means_that_patchs_whole_revision():
    ingest(posting("a", "mm: a", files=(("f.c", "1111111", "2222222"), ("h.c", "6666666", "7777777"))))
    ingest(posting("b", "mm: b", frm=BOB, files=(("g.c", "4444444", "5555555"),),
                   cover="Depends-on: https://lore.kernel.org/linux-mm/a-2@ex.org/T/#u"))
    data = graph_for(rev("b-0@ex.org"))
    [e] = edges_of(data, "depends-on")
    assert (e["to"], e["referred"]) == ("a-0@ex.org", "a-2@ex.org")
    assert {n["msgid"] for n in data["nodes"]} >= {"a-0@ex.org", "b-0@ex.org"}
    assert "a-2@ex.org" not in {n["msgid"] for n in data["nodes"]}


def test_supersedes_in_someone_elses_reply_marks_the_old_revision_superseded():
    ingest(posting("old", "mm: old name", day=1))
    ingest(posting("new", "mm: brand new name", day=5, files=(("f.c", "1111111", "3333333"),)))
    ingest(posting("user", "mm: user", frm=BOB, day=6, files=(("g.c", "4444444", "5555555"),),
                   cover="Based-on: <old-0@ex.org>"))
    ingest([mail("r1@ex.org", "Re: [PATCH 0/1] mm: brand new name", "For the record:\n\nSupersedes: <old-0@ex.org>\n",
                 reply_to="new-0@ex.org", frm=CAROL, day=7)])
    data = graph_for(rev("user-0@ex.org"))
    assert node(data, "old-0@ex.org")["newer"] == "new-0@ex.org" and node(data, "old-0@ex.org")["state"] == "superseded"
    assert data["newest_order"] == ["new-0@ex.org", "user-0@ex.org"]
    sup = [e for e in edges_of(data, "supersedes")]
    assert [(e["from"], e["to"], e["how"]) for e in sup] == [("new-0@ex.org", "old-0@ex.org", "reply")]


# ---------------------------------------------------------------- structure

def test_cycle_is_reported_with_its_edges_and_an_order_still_comes_out():
    ingest(posting("a", "mm: a", cover="Based-on: <b-0@ex.org>"))
    ingest(posting("b", "mm: b", frm=BOB, files=(("g.c", "4444444", "5555555"),),
                   cover="Depends-on: <a-0@ex.org>", day=2))
    data = graph_for(rev("a-0@ex.org"))
    [cycle] = [p for p in data["problems"] if p["kind"] == "cycle"]
    assert "mm: a" in cycle["detail"] and "mm: b" in cycle["detail"]
    assert len(data["cycles"]) == 1 and {e["from"] for e in data["cycles"][0]} == {"a-0@ex.org", "b-0@ex.org"}
    assert sorted(data["order"]) == ["a-0@ex.org", "b-0@ex.org"] and data["order"][-1] == "a-0@ex.org"
    [broken] = [e for e in data["edges"] if e["broken_cycle"]]
    assert (broken["from"], broken["to"]) == ("b-0@ex.org", "a-0@ex.org")
    assert "so that mm: a" in cycle["detail"]


def test_cycle_below_the_root_is_broken_and_the_root_still_comes_last():
    ingest(posting("r", "mm: root", cover="Based-on: <a-0@ex.org>", day=5))
    ingest(posting("a", "mm: a", frm=BOB, cover="Based-on: <b-0@ex.org>", day=1,
                   files=(("g.c", "4444444", "5555555"),)))
    ingest(posting("b", "mm: b", frm=CAROL, cover="This series depends on https://lore.kernel.org/all/a-0@ex.org/",
                   day=2, files=(("k.c", "8888888", "9999999"),)))
    data = graph_for(rev("r-0@ex.org"))
    assert [p["kind"] for p in data["problems"]] == ["cycle"]
    assert data["order"][-1] == "r-0@ex.org" and sorted(data["order"][:2]) == ["a-0@ex.org", "b-0@ex.org"]
    [broken] = [e for e in data["edges"] if e["broken_cycle"]]
    assert broken["how"] == "prose"  # the weaker evidence gives way


def test_a_revision_naming_itself_is_not_a_dependency():
    ingest(posting("a", "mm: a", cover="Based-on: <a-1@ex.org>\n\nThis depends on https://lore.kernel.org/all/a-0@ex.org/"))
    data = graph_for(rev("a-0@ex.org"))
    assert edges_of(data, "depends-on") == []
    assert data["order"] == ["a-0@ex.org"] and data["problems"] == []


def test_self_reference_in_a_reply_is_ignored_and_said_so():
    ingest(posting("a", "mm: a"))
    ingest([mail("bot@ex.org", "Re: [PATCH 1/1] part 1 of mm: a",
                 "Hi,\n\nThis patch depends on https://lore.kernel.org/all/a-1@ex.org/ to build.\n",
                 reply_to="a-1@ex.org", frm=CAROL, day=2)])
    data = graph_for(rev("a-0@ex.org"))
    assert [e for e in data["edges"] if e["to"] == "a-0@ex.org"] == []
    assert data["order"] == ["a-0@ex.org"]


def test_missing_target_is_a_node_with_the_reason_and_chain_for_refuses():
    ingest(posting("b", "mm: b", cover="Based-on: <nowhere-1@example.org>"))
    data = graph_for(rev("b-0@ex.org"))
    gone = node(data, "nowhere-1@example.org")
    assert (gone["state"], gone["role"]) == ("missing", "missing") and "not stored" in gone["error"]
    assert [p["kind"] for p in data["problems"]] == ["missing"]
    with pytest.raises(GraphError, match="nowhere-1@example.org"):
        chain_for(rev("b-0@ex.org"))


def test_chain_for_gives_revisions_in_apply_order_and_newest_on_request():
    ingest(posting("a1", "mm: helpers", day=1))
    ingest(posting("a2", "mm: helpers", version=2, day=3, files=(("f.c", "1111111", "3333333"),)))
    ingest(posting("b", "mm: b", frm=BOB, day=4, cover="Based-on: <a1-0@ex.org>",
                   files=(("g.c", "4444444", "5555555"),)))
    assert [r.msgid for r in chain_for(rev("b-0@ex.org"))] == ["a1-0@ex.org", "b-0@ex.org"]
    assert [r.msgid for r in chain_for(rev("b-0@ex.org"), newest=True)] == ["a2-0@ex.org", "b-0@ex.org"]


# ---------------------------------------------------------------- staying current

def test_based_on_arriving_later_in_a_reply_changes_the_graph_and_the_snapshot_says_so():
    ingest(posting("a", "mm: a"))
    ingest(posting("b", "mm: b", frm=BOB, day=2, files=(("g.c", "4444444", "5555555"),)))
    first = graph_for(rev("b-0@ex.org"))
    assert first["order"] == ["b-0@ex.org"] and first["snapshot"]["changes"] == []
    result = ingest([mail("late@ex.org", "Re: [PATCH 0/1] mm: b", "Forgot to say:\n\nBased-on: <a-0@ex.org>\n",
                          reply_to="b-0@ex.org", frm=BOB, day=3)])
    assert recompute_affected(result.revisions) == [rev("b-0@ex.org").id]
    snap = GraphSnapshot.objects.filter(root=rev("b-0@ex.org")).order_by("-id").first()
    assert snap.data["order"] == ["a-0@ex.org", "b-0@ex.org"]
    added = [c for c in snap.changes if c["what"] == "edge-added"]
    assert added and added[0]["edge"] == ["b-0@ex.org", "a-0@ex.org", "depends-on", "reply"]
    assert added[0]["evidence_msgid"] == "late@ex.org"
    assert GraphSnapshot.objects.filter(root=rev("b-0@ex.org")).count() == 2


def test_a_new_revision_of_a_dependency_is_noticed_by_the_graphs_that_use_it():
    ingest(posting("a1", "mm: helpers", day=1))
    ingest(posting("b", "mm: b", frm=BOB, day=2, cover="Based-on: <a1-0@ex.org>",
                   files=(("g.c", "4444444", "5555555"),)))
    graph_for(rev("b-0@ex.org"))
    result = ingest(posting("a2", "mm: helpers", version=2, day=5, files=(("f.c", "1111111", "3333333"),)))
    assert rev("b-0@ex.org").id in recompute_affected(result.revisions)
    snap = GraphSnapshot.objects.filter(root=rev("b-0@ex.org")).order_by("-id").first()
    assert [c["msgid"] for c in snap.changes if c["what"] == "newer"] == ["a1-0@ex.org"]
    assert snap.data["newest_order"] == ["a2-0@ex.org", "b-0@ex.org"]


def test_unchanged_graph_is_not_stored_twice():
    ingest(posting("a", "mm: a"))
    one, two = graph_for(rev("a-0@ex.org")), graph_for(rev("a-0@ex.org"))
    assert one["snapshot"]["id"] == two["snapshot"]["id"]


# ---------------------------------------------------------------- blobs

def test_preimage_blob_produced_by_another_revision_proves_an_unstated_dependency():
    ingest(posting("a", "mm: a", files=(("f.c", "1111111", "abcdef0123"),)))
    ingest(posting("b", "mm: b", frm=BOB, day=2, files=(("f.c", "abcdef0", "5555555"),)))
    data = graph_for(rev("b-0@ex.org"))
    [e] = edges_of(data, "depends-on")
    assert (e["to"], e["how"], e["evidence_msgid"]) == ("a-0@ex.org", "blob", "b-1@ex.org")
    assert e["extra"]["file"] == "f.c" and e["extra"]["patch"] == "a-1@ex.org"
    assert "f.c starts from abcdef0" in e["evidence"]
    assert data["order"] == ["a-0@ex.org", "b-0@ex.org"]


def test_blob_produced_identically_by_two_revisions_picks_neither_alone():
    ingest(posting("a", "mm: a", files=(("f.c", "1111111", "abcdef0123"),)))
    ingest(posting("c", "mm: other", frm=CAROL, files=(("f.c", "1111111", "abcdef0123"),)))
    ingest(posting("b", "mm: b", frm=BOB, day=2, files=(("f.c", "abcdef0", "5555555"),)))
    data = graph_for(rev("b-0@ex.org"))
    assert edges_of(data, "depends-on") == []
    related = edges_of(data, "related")
    assert sorted(e["to"] for e in related) == ["a-0@ex.org", "c-0@ex.org"]
    assert all(sorted(e["extra"]["ambiguous"]) == ["a-0@ex.org", "c-0@ex.org"] for e in related)
    assert data["order"] == ["b-0@ex.org"]


def test_ambiguous_blob_is_settled_by_the_dependency_the_author_names():
    ingest(posting("a", "mm: a", files=(("f.c", "1111111", "abcdef0123"),)))
    ingest(posting("c", "mm: other", frm=CAROL, files=(("f.c", "1111111", "abcdef0123"),)))
    ingest(posting("b", "mm: b", frm=BOB, day=2, files=(("f.c", "abcdef0", "5555555"),),
                   cover="This is built on top of https://lore.kernel.org/all/c-0@ex.org/"))
    data = graph_for(rev("b-0@ex.org"))
    assert sorted((e["to"], e["how"]) for e in edges_of(data, "depends-on")) == [("c-0@ex.org", "blob"), ("c-0@ex.org", "prose")]
    assert data["order"] == ["c-0@ex.org", "b-0@ex.org"]


# ---------------------------------------------------------------- fetching

def test_missing_dependency_is_fetched_from_the_public_inbox(tmp_path, settings):
    dep = tmp_path / "dep.mbox"
    dep.write_bytes(b"".join(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" + m + b"\n"
                             for m in posting("far", "mm: far away", frm=CAROL)))
    deeper = tmp_path / "deeper.mbox"
    deeper.write_bytes(b"".join(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" + m + b"\n"
                                for m in posting("mid", "mm: middle", frm=CAROL,
                                                 cover="Based-on: <far-0@ex.org>",
                                                 files=(("k.c", "8888888", "9999999"),))))
    with serve_inbox([dep, deeper], tmp_path) as inbox:
        settings.LORE_URL = inbox.url
        ingest(posting("b", "mm: b", frm=BOB, day=9, files=(("g.c", "4444444", "5555555"),),
                       cover="Based-on: <mid-1@ex.org>\nBased-on: <gone-7@example.org>"))
        data = graph_for(rev("b-0@ex.org"), fetch=True)
    assert data["order"] == ["far-0@ex.org", "mid-0@ex.org", "b-0@ex.org"], (data["fetched"], data["nodes"])
    gone = node(data, "gone-7@example.org")
    assert gone["state"] == "missing" and "gone-7@example.org" in gone["error"]
    assert "not stored" not in gone["error"]
    assert {f["msgid"] for f in data["fetched"]} == {"mid-1@ex.org", "mid-0@ex.org", "far-0@ex.org", "gone-7@example.org"}


def test_fetch_depth_limits_how_far_threads_are_fetched(tmp_path, settings):
    deeper = tmp_path / "deeper.mbox"
    deeper.write_bytes(b"".join(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" + m + b"\n"
                                for m in posting("mid", "mm: middle", frm=CAROL, cover="Based-on: <far-0@ex.org>",
                                                 files=(("k.c", "8888888", "9999999"),))))
    with serve_inbox([deeper], tmp_path) as inbox:
        settings.LORE_URL = inbox.url
        ingest(posting("b", "mm: b", frm=BOB, files=(("g.c", "4444444", "5555555"),),
                       cover="Based-on: <mid-0@ex.org>"))
        data = graph_for(rev("b-0@ex.org"), fetch=True, depth=1)
    assert [f["msgid"] for f in data["fetched"]] == ["mid-0@ex.org"]
    assert node(data, "far-0@ex.org")["state"] == "missing"


def test_an_abbreviated_or_uppercase_prerequisite_patch_id_still_names_its_revision():
    ingest(posting("a", "mm: a", files=(("f.c", "1111111", "2222222"), ("h.c", "6666666", "7777777"))))
    pid = Patch.objects.get(message__msgid="a-2@ex.org").patch_id
    ingest(posting("b", "mm: b", frm=BOB, files=(("g.c", "4444444", "5555555"),),
                   cover=f"prerequisite-patch-id: {pid[:12]}"))
    ingest(posting("c", "mm: c", frm=CAROL, files=(("k.c", "8888888", "9999999"),),
                   cover=f"prerequisite-patch-id: {pid.upper()}"))
    for stem in ("b", "c"):
        [e] = edges_of(graph_for(rev(f"{stem}-0@ex.org")), "depends-on")
        assert e["to"] == "a-0@ex.org", stem


def _full_scans(sql: str, params, table: str) -> list[str]:
    """The plan lines that read every row of `table` (none when an index serves the query)."""
    from django.db import connection
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SET LOCAL enable_seqscan = off")  # a tiny table is scanned anyway otherwise
            cur.execute("EXPLAIN " + sql, params)
            return [r[0] for r in cur.fetchall() if f"Seq Scan on {table}" in r[0]]
        cur.execute("EXPLAIN QUERY PLAN " + sql, params)
        return [r[-1] for r in cur.fetchall() if r[-1].startswith(f"SCAN {table}")]


def test_patch_id_change_id_and_blob_producer_lookups_are_served_by_indexes_on_this_database():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from reviewapp.services import graph as graph_service
    ingest(posting("a", "mm: a", files=(("f.c", "1111111", "2222222"),), cover="change-id: 20250101-helpers-abc123"))
    ingest(posting("b", "mm: b", frm=BOB, files=(("f.c", "2222222", "3333333"),)))
    pid = Patch.objects.get(message__msgid="a-1@ex.org").patch_id
    assert graph_service._by_change_id("20250101-helpers-abc123", 1).msgid == "a-0@ex.org"
    b = rev("b-0@ex.org")
    for name, call in (("full patch-id", lambda: graph_service._by_patch_id(pid)),
                       ("short patch-id", lambda: graph_service._by_patch_id(pid[:10])),
                       ("blob producers, one revision", lambda: graph_service._read_blob_edges(b)),
                       ("blob producers, a batch", lambda: graph_service._preload_blob_edges({}, [b])),
                       ("change-id", lambda: graph_service._by_change_id("20250101-helpers-abc123", None)),
                       ("change-id:v1", lambda: graph_service._by_change_id("20250101-helpers-abc123", 1))):
        with CaptureQueriesContext(connection) as seen:
            call()
        assert seen.captured_queries, name
        for q in seen.captured_queries:
            # Django's captured SQL has its parameters inlined: EXPLAIN it as it ran.
            for table in ("reviewapp_patch", "reviewapp_patchfile", "reviewapp_revision", "reviewapp_series"):
                assert _full_scans(q["sql"], None, table) == [], (name, q["sql"])
