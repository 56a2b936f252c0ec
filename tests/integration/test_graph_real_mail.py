"""The graph on real kernel mail (../shared/lore) and on the demo story, and the CLI."""
import io
import json

import pytest
from django.core.management import CommandError, call_command

from reviewapp.models import Revision
from reviewapp.services.graph import GraphError, chain_for, graph_for
from reviewapp.services.ingest import ingest
from reviewapp.wording import not_needed_sentence
from tests.support.demo import ingest_demo_mails as load_demo
from untangle.mbox import messages_from_path

pytestmark = pytest.mark.django_db


UFFD3 = "20250404154352.23078-1-kalyazin@amazon.com"
UFFD2 = "20250402160721.97596-1-kalyazin@amazon.com"
FUAD7 = "20250318161823.4005529-1-tabba@google.com"
JAMES = "20250109204929.1106563-1-jthoughton@google.com"
DMAP4 = "20250221160728.1584559-1-roypat@amazon.co.uk"
FUAD4 = "20250218172500.807733-1-tabba@google.com"

# demo story (fixtures/demo/mail)
D_UFFD3 = "20250404132740.18342-1-kalyazin@amazon.com"
D_MAP7 = "20250318142233.2716254-1-tabba@google.com"
D_MAP8 = "20250418120905.3320715-1-tabba@google.com"
D_RESTRICTED = "20250319101548.2791123-1-tabba@google.com"
D_JAMES = "20250109193512.2210387-1-jthoughton@google.com"
D_FASTPATH = "20250410063119.40211-1-lena.brandt@example.org"
D_DOCS = "20250422084530.88342-1-ravi.menon@example.org"


def load(*paths):
    for p in paths:
        ingest(messages_from_path(p))


def load_lore(lore_dir):
    load(*sorted(lore_dir.glob("*.mbox")), *sorted((lore_dir / "transcribed").glob("*.eml")))


def edge(data, frm, to, kind=None):
    found = [e for e in data["edges"] if e["from"] == frm and e["to"] == to and (kind is None or e["kind"] == kind)]
    assert found, f"no {kind} edge {frm} -> {to}"
    return found


def node(data, msgid):
    return next(n for n in data["nodes"] if n["msgid"] == msgid)


# ---------------------------------------------------------------- real mail

def test_uffd_minor_v3_is_built_on_mapping_v7_james_is_related_v2_is_its_previous(lore_dir):
    load_lore(lore_dir)
    data = graph_for(Revision.objects.get(msgid=UFFD3))
    assert data["order"] == [FUAD7, UFFD3]
    [dep] = edge(data, UFFD3, FUAD7, "depends-on")
    assert dep["how"] == "prose" and "built on top of the Fuad's v7" in dep["evidence"]
    assert dep["evidence_msgid"] == UFFD3 and dep["used"]
    [rel] = edge(data, UFFD3, JAMES, "related")
    assert "With James's KVM userfault [2]" in rel["evidence"]
    assert JAMES not in data["order"] and node(data, JAMES)["role"] == "related"
    [prev] = edge(data, UFFD3, UFFD2, "previous-revision")
    assert "Changes since v2 [4]" in prev["evidence"]
    assert node(data, UFFD2)["state"] == "superseded" and node(data, UFFD2)["newer"] == UFFD3
    # Fuad v7 is a transcribed cover without its 9 patches: the graph says so.
    assert node(data, FUAD7)["state"] == "incomplete"
    assert any(p["kind"] == "incomplete" and "v7" in p["detail"] for p in data["problems"])
    assert any(u["msgid"] == JAMES and u["reason"] == "only-mentioned" for u in data["unneeded"])
    assert any("only mentioned" in worded for worded in sentences(data).values())


def test_direct_map_v4_needs_mapping_v4_which_is_missing_until_fetched(lore_dir):
    load_lore(lore_dir)
    root = Revision.objects.get(msgid=DMAP4)
    data = graph_for(root)
    [dep] = edge(data, DMAP4, FUAD4, "depends-on")
    assert dep["how"] == "prose" and "rebased on top of Fuad's v4" in dep["evidence"]
    assert node(data, FUAD4)["state"] == "missing"
    assert any(p["kind"] == "missing" and FUAD4 in p["detail"] for p in data["problems"])
    # v7 and v8 of direct map were posted later: the root itself is not the newest.
    assert node(data, DMAP4)["newer"] == "20250924151101.2225820-1-patrick.roy@campus.lmu.de"
    with pytest.raises(GraphError, match=FUAD4):
        chain_for(root)


def test_fetch_through_public_inbox_brings_the_dependency_and_reports_what_lore_lacks(lore_dir, lore_inbox, settings):
    settings.LORE_URL = lore_inbox.url
    load(lore_dir / "kvm-gmem-uffd-minor-v3.mbox", lore_dir / "gmem-direct-map-removal-v4.mbox")
    uffd = graph_for(Revision.objects.get(msgid=UFFD3), fetch=True)
    assert uffd["order"] == [FUAD7, UFFD3]
    assert node(uffd, FUAD7)["kind"] == "revision" and node(uffd, JAMES)["kind"] == "revision"
    assert {f["msgid"] for f in uffd["fetched"] if f["error"] is None} >= {FUAD7, JAMES, UFFD2}
    dmap = graph_for(Revision.objects.get(msgid=DMAP4), fetch=True)
    gone = node(dmap, FUAD4)
    assert gone["state"] == "missing" and "404" in gone["error"]


def sentences(data) -> dict[str, str]:
    """What a page says for the structured "not needed" reasons."""
    names = {n["msgid"]: n["label"] for n in data["nodes"]}
    return {u["msgid"]: not_needed_sentence(u, data["root"], names) for u in data["unneeded"]}


# ---------------------------------------------------------------- the demo story

def test_demo_uffd_v3_needs_mapping_v7_proved_by_prose_and_blobs_and_v8_exists():
    load_demo()
    data = graph_for(Revision.objects.get(msgid=D_UFFD3))
    assert data["order"] == [D_MAP7, D_UFFD3]
    assert {e["how"] for e in edge(data, D_UFFD3, D_MAP7, "depends-on")} == {"prose", "blob"}
    assert node(data, D_MAP7)["newer"] == D_MAP8 and node(data, D_MAP7)["state"] == "superseded"
    assert data["newest_order"] == [D_MAP8, D_UFFD3]
    [sup] = [p for p in data["problems"] if p["kind"] == "superseded"]
    assert "v8 was posted on 2025-04-18" in sup["detail"]
    unneeded = sentences(data)
    assert set(unneeded) == {D_JAMES, D_RESTRICTED, D_DOCS, D_FASTPATH}
    assert {u["msgid"]: u["reason"] for u in data["unneeded"]}[D_FASTPATH] == "built-on-root"
    assert "is not needed by" in unneeded[D_RESTRICTED]
    assert "built on it, not the other way round" in unneeded[D_FASTPATH]


def test_demo_restricted_mapping_ambiguous_blobs_are_settled_by_its_based_on_and_self_links_ignored():
    load_demo()
    data = graph_for(Revision.objects.get(msgid=D_RESTRICTED))
    assert data["order"] == [D_MAP7, D_RESTRICTED]
    blob_deps = [e for e in data["edges"] if e["how"] == "blob" and e["kind"] == "depends-on"]
    assert blob_deps and {e["to"] for e in blob_deps} == {D_MAP7}
    related = [e for e in data["edges"] if e["how"] == "blob" and e["kind"] == "related"]
    assert related and all(D_MAP7 in e["extra"]["ambiguous"] for e in related)
    assert [i["reason"] for i in data["ignored"]] == ["it names the revision itself"]


# ---------------------------------------------------------------- CLI

def run(*args) -> str:
    out = io.StringIO()
    call_command("graph", *args, stdout=out)
    return out.getvalue()


def test_cli_json_follows_the_contract(lore_dir):
    load_lore(lore_dir)
    data = json.loads(run(f"https://lore.kernel.org/kvm/{UFFD3}/T/", "--json"))
    assert data["root"] == UFFD3 and data["order"] == [FUAD7, UFFD3]
    for n in data["nodes"]:
        assert {"msgid", "subject", "version", "complete", "state", "newer"} <= set(n)
        assert n["state"] in ("ok", "missing", "incomplete", "superseded")
    for e in data["edges"]:
        assert {"from", "to", "kind", "how", "evidence"} <= set(e)
        assert e["kind"] in ("depends-on", "previous-revision", "supersedes", "related", "base")
        assert e["how"] in ("tag", "prose", "blob", "reply")
    assert all(p["kind"] in ("cycle", "missing", "superseded", "incomplete", "conflicting-base")
               for p in data["problems"])
    series = json.loads(_series_json())
    known = {s["msgid"] for s in series["series"]}
    assert {n["msgid"] for n in data["nodes"] if n["kind"] == "revision"} <= known


def _series_json() -> str:
    out = io.StringIO()
    call_command("series", "--json", stdout=out)
    return out.getvalue()


def test_cli_text_names_order_problems_and_evidence(lore_dir):
    load_lore(lore_dir)
    text = run(DMAP4)
    assert "apply order" in text and "problems:" in text
    assert "missing:" in text and FUAD4 in text
    assert "rebased on top of Fuad's v4" in text


def test_cli_unknown_series_fails_with_a_message():
    with pytest.raises(CommandError, match="no series stored"):
        run("nothing-here-1@example.org")


def test_cli_fetch_gets_the_root_itself_through_public_inbox(lore_inbox, settings):
    settings.LORE_URL = lore_inbox.url
    data = json.loads(run(UFFD3, "--fetch", "--json"))
    assert data["order"] == [FUAD7, UFFD3]
    assert Revision.objects.filter(msgid=UFFD3, complete=True).exists()
