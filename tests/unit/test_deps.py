"""Dependency discovery on real kernel mails (../shared/lore) and small synthetic bodies."""
from __future__ import annotations

import re

import pytest

from tests.support.lore_mail import msgid_of, plain_body, read_mails
from untangle.deps import (
    changelog_heading,
    discover_blob_edges,
    discover_text_edges,
    extract_change_id,
    msgid_from_url,
)

FUAD_V7 = "20250318161823.4005529-1-tabba@google.com"
FUAD_V4 = "20250218172500.807733-1-tabba@google.com"
UFFD_V3 = "20250404154352.23078-1-kalyazin@amazon.com"
UFFD_V2 = "20250402160721.97596-1-kalyazin@amazon.com"
JAMES_V2 = "20250109204929.1106563-1-jthoughton@google.com"
RESTRICTED = "20250117163001.2326672-1-tabba@google.com"


# ---------------------------------------------------------------- helpers

def _cover(name: str):
    msgs = read_mails(name)
    for m in msgs:
        if re.search(r"\s0+/\d+\]", str(m["subject"])) or len(msgs) == 1:
            return msgid_of(m), plain_body(m)
    raise AssertionError("no cover letter")


def _edges(name: str):
    msgid, body = _cover(name)
    return discover_text_edges(msgid, body)


def _by_target(edges):
    out = {}
    for e in edges:
        out.setdefault(e.target, []).append(e)
    return out


def _kinds(edges, target):
    return sorted(e.kind for e in edges if e.target == target)


def _files_of_patch(body: str) -> list[dict]:
    """Minimal `diff --git` / `index a..b` reader for the blob tests."""
    files, path = [], None
    for line in body.splitlines():
        m = re.match(r"^diff --git a/(\S+) b/(\S+)", line)
        if m:
            path = m.group(2)
            continue
        m = re.match(r"^index ([0-9a-f]+)\.\.([0-9a-f]+)", line)
        if m and path:
            files.append({"path": path, "old": m.group(1), "new": m.group(2)})
            path = None
    return files


def _revision_from_mbox(name: str) -> dict:
    msgs = read_mails(name)
    cover = next(m for m in msgs if re.search(r"\s0+/\d+\]", str(m["subject"])))
    patches = [{"msgid": msgid_of(m), "files": _files_of_patch(plain_body(m))} for m in msgs if m is not cover]
    return {"msgid": msgid_of(cover), "patches": patches}


# ---------------------------------------------------------------- URLs

@pytest.mark.parametrize("url,expected", [
    ("https://lore.kernel.org/kvm/20250318161823.4005529-1-tabba@google.com/", FUAD_V7),
    ("https://lore.kernel.org/kvm/20250318161823.4005529-1-tabba@google.com/T/", FUAD_V7),
    ("https://lore.kernel.org/all/20250318161823.4005529-1-tabba@google.com/t.mbox.gz", FUAD_V7),
    ("https://lore.kernel.org/kvm/20250318161823.4005529-1-tabba@google.com/T/#r", FUAD_V7),
    ("https://lore.kernel.org/kvm/20250318161823.4005529-1-tabba@google.com/T/#Z2e.:..:x::40google.com", FUAD_V7),
    ("https://lore.kernel.org/r/20250318161823.4005529-1-tabba@google.com", FUAD_V7),
    ("https://patch.msgid.link/20250318161823.4005529-1-tabba@google.com", FUAD_V7),
    ("https://lore.kernel.org/kvm/20250318161823.4005529-1-tabba%40google.com/", FUAD_V7),
    ("https://inbox.sourceware.org/gcc-patches/abc.123@example.org/", "abc.123@example.org"),
    ("https://lore.kernel.org/kvm/cover.1726009989.git.ackerleytng@google.com/).",
     "cover.1726009989.git.ackerleytng@google.com"),
    ("https://docs.google.com/document/d/1M6766BzdY1Lhk7LiR5IqVR8B8mG3cr/edit?tab=t.0#heading=h.w1", None),
    ("https://github.com/firecracker-microvm/firecracker/tree/feature/secret-hiding", None),
])
def test_message_id_is_read_from_public_inbox_urls(url, expected):
    assert msgid_from_url(url) == expected


# ---------------------------------------------------------------- formal tags

ME = "20250101000000.1-1-me@example.org"


def test_base_commit_tag_is_a_base_edge():
    [e] = discover_text_edges(ME, "text\n\nbase-commit: 4701f33a10702d5fc577c32434eb62adde0a1ae1\n-- \n2.49\n")
    assert (e.kind, e.target, e.target_type, e.how) == ("base", "4701f33a10702d5fc577c32434eb62adde0a1ae1",
                                                         "commit", "tag")
    assert e.evidence == "base-commit: 4701f33a10702d5fc577c32434eb62adde0a1ae1"
    assert e.source_msgid == ME


def test_b4_prerequisite_tags_give_change_id_patch_id_and_base():
    body = ("cover text\n\n---\nbase-commit: 1111111111111111111111111111111111111111\n"
            "change-id: 20250101-mine-abcdef\n"
            "prerequisite-change-id: 20241201-theirs-123456:v3\n"
            "prerequisite-patch-id: 2222222222222222222222222222222222222222\n"
            "prerequisite-patch-id: 3333333333333333333333333333333333333333\n"
            "prerequisite-base-commit: 4444444444444444444444444444444444444444\n\n"
            "Best regards,\n-- \nMe <me@example.org>\n")
    edges = discover_text_edges(ME, body)
    change = [e for e in edges if e.target_type == "change-id"]
    assert [(e.kind, e.target, e.version) for e in change] == [("depends-on", "20241201-theirs-123456", 3)]
    patch_ids = [e for e in edges if e.target_type == "patch-id"]
    assert [e.target[:4] for e in patch_ids] == ["2222", "3333"]
    assert all(e.kind == "depends-on" and e.extra["change_id"] == "20241201-theirs-123456" for e in patch_ids)
    bases = [(e.target[:4], e.extra.get("prerequisite", False)) for e in edges if e.kind == "base"]
    assert bases == [("1111", False), ("4444", True)]
    # change-id names this series itself: extracted, never an edge
    assert extract_change_id(body) == "20250101-mine-abcdef"
    assert not any("mine" in e.target for e in edges)


@pytest.mark.parametrize("value", [
    "<20241201.5-1-them@example.org>",
    "20241201.5-1-them@example.org",
    "https://lore.kernel.org/all/20241201.5-1-them@example.org/",
])
def test_prerequisite_message_id_with_or_without_brackets(value):
    [e] = discover_text_edges(ME, f"prerequisite-message-id: {value}\n")
    assert (e.kind, e.target, e.target_type, e.how) == ("depends-on", "20241201.5-1-them@example.org", "msgid", "tag")


def test_several_based_on_tags_any_capitalisation_and_url_form():
    body = ("This is the QEMU way of saying it.\n\n"
            "Based-on: <20240101.1-1-a@example.org>\n"
            "Based-On: 20240202.2-1-b@example.org\n"
            "based-on: https://lore.kernel.org/qemu-devel/20240303.3-1-c%40example.org/\n"
            "Based-on: https://patch.msgid.link/20240404.4-1-d@example.org\n")
    edges = discover_text_edges(ME, body)
    assert [(e.kind, e.target, e.how) for e in edges] == [
        ("depends-on", "20240101.1-1-a@example.org", "tag"),
        ("depends-on", "20240202.2-1-b@example.org", "tag"),
        ("depends-on", "20240303.3-1-c@example.org", "tag"),
        ("depends-on", "20240404.4-1-d@example.org", "tag"),
    ]
    assert edges[1].evidence == "Based-On: 20240202.2-1-b@example.org"


def test_depends_on_and_supersedes_tags():
    body = ("Depends-on: https://lore.kernel.org/r/20240101.1-1-a@example.org\n"
            "Supersedes: <20231212.9-1-me@example.org>\n")
    edges = discover_text_edges(ME, body)
    assert [(e.kind, e.target) for e in edges] == [("depends-on", "20240101.1-1-a@example.org"),
                                                    ("supersedes", "20231212.9-1-me@example.org")]


def test_tag_written_in_a_later_reply_counts_but_quoted_tags_do_not():
    reply = ("On Tue, Apr 1, 2025 at 10:00, Someone wrote:\n"
             "> Based-on: <20240101.1-1-quoted@example.org>\n"
             "> This series is built on top of [1].\n"
             "> [1] https://lore.kernel.org/kvm/20240101.1-1-quotedprose@example.org/\n\n"
             "Forgot to say:\n\nBased-on: <20240505.5-1-real@example.org>\n")
    edges = discover_text_edges("reply-1@example.org", reply, is_reply=True)
    assert [(e.kind, e.target, e.how, e.source_msgid) for e in edges] == [
        ("depends-on", "20240505.5-1-real@example.org", "tag", "reply-1@example.org")]


def test_links_and_tags_inside_a_diff_are_not_dependencies():
    body = ("Add docs.\n\nSigned-off-by: Me <me@example.org>\n---\n"
            " Documentation/x.rst | 2 ++\n\n"
            "diff --git a/Documentation/x.rst b/Documentation/x.rst\n"
            "index 1111111..2222222 100644\n--- a/Documentation/x.rst\n+++ b/Documentation/x.rst\n"
            "@@ -1,1 +1,3 @@\n context\n"
            "+This depends on https://lore.kernel.org/r/20240101.1-1-a@example.org\n"
            "+Based-on: <20240101.1-1-b@example.org>\n"
            "\nbase-commit: 3333333333333333333333333333333333333333\n-- \n2.47.1\n")
    edges = discover_text_edges(ME, body)
    assert [(e.kind, e.target[:7]) for e in edges] == [("base", "3333333")]


# ---------------------------------------------------------------- prose, real covers

def test_uffd_minor_v3_is_built_on_fuad_v7_through_a_numbered_reference():
    edges = _edges("kvm-gmem-uffd-minor-v3.mbox")
    [dep] = [e for e in edges if e.kind == "depends-on"]
    assert (dep.target, dep.target_type, dep.how, dep.version) == (FUAD_V7, "msgid", "prose", 7)
    assert "built on top of the Fuad's v7" in dep.evidence
    assert "[1] https://lore.kernel.org/kvm/20250318161823.4005529-1-tabba@google.com/T/" in dep.evidence
    assert dep.source_msgid == UFFD_V3


def test_uffd_minor_v3_names_james_as_context_and_v2_as_previous_revision():
    edges = _edges("kvm-gmem-uffd-minor-v3.mbox")
    assert _kinds(edges, JAMES_V2) == ["related"]
    [prev] = [e for e in edges if e.kind == "previous-revision"]
    assert (prev.target, prev.version) == (UFFD_V2, 2)
    assert "Changes since v2 [4]" in prev.evidence
    assert [e.target for e in edges if e.kind == "base"] == ["3cc51efc17a2c41a480eed36b31c1773936717e0"]
    # the call notes are a google doc, not a message: no edge at all
    assert not any("google.com/document" in e.target for e in edges)


def test_uffd_minor_v2_previous_revision_had_another_subject():
    edges = _edges("kvm-gmem-uffd-minor-v2.mbox")
    assert _kinds(edges, "20250303133011.44095-1-kalyazin@amazon.com") == ["previous-revision"]
    # [1] and [5] both point into Fuad's v7; one dependency edge, not two
    assert _kinds(edges, FUAD_V7) == ["depends-on"]


def test_direct_map_v4_rebased_on_fuad_v4_and_names_an_upstream_fallback_base():
    edges = _edges("gmem-direct-map-removal-v4.mbox")
    [dep] = [e for e in edges if e.kind == "depends-on"]
    assert (dep.target, dep.how, dep.version) == (FUAD_V4, "prose", 4)
    assert "rebased on top of Fuad's v4" in dep.evidence
    prose_bases = [e for e in edges if e.kind == "base" and e.how == "prose"]
    assert [(e.target, e.extra["ref"]) for e in prose_bases] == [("0ad2507d5d93", "sha")]
    previous = sorted((e.version, e.target) for e in edges if e.kind == "previous-revision")
    assert previous == [(1, "20240709132041.3625501-1-roypat@amazon.co.uk"),
                        (2, "20240910163038.1298452-1-roypat@amazon.co.uk"),
                        (3, "20241030134912.515725-1-roypat@amazon.co.uk")]


def test_fuad_v7_is_a_base_for_restricted_mapping_not_a_dependant_of_it():
    edges = _edges("transcribed/fuad-v7-cover.eml")
    assert not [e for e in edges if e.kind == "depends-on"]
    [restricted] = [e for e in edges if e.target == RESTRICTED]
    assert restricted.kind == "related" and restricted.extra["reverse"] == "depends-on"
    assert _kinds(edges, "20250312175824.1809636-1-tabba@google.com") == ["previous-revision"]
    assert _kinds(edges, "20250129172320.950523-1-tabba@google.com") == ["previous-revision"]  # "refer to v2 [3]"
    assert ("base", "v6.14-rc7") in {(e.kind, e.target) for e in edges if e.how == "prose"}


def test_james_cover_lists_v1_and_rfc_as_previous_revisions_and_others_as_related():
    edges = _edges("transcribed/james-kvm-userfault-v2-cover.eml")
    by = _by_target(edges)
    assert by["20241204191349.1730936-1-jthoughton@google.com"][0].kind == "previous-revision"
    assert by["20241204191349.1730936-1-jthoughton@google.com"][0].version == 1
    assert by["20240710234222.2333120-1-jthoughton@google.com"][0].kind == "previous-revision"
    assert by["20240215235405.368539-1-amoorthy@google.com"][0].kind == "related"
    assert by["20241118123948.4796-1-kalyazin@amazon.com"][0].kind == "related"
    assert not [e for e in edges if e.kind == "depends-on"]


def test_quoted_printable_v8_cover_decodes_to_tags_and_labelled_links():
    edges = _edges("gmem-direct-map-removal-v8-qp.mbox")
    assert ("base", "e0c26d47def7382d7dbd9cad58bc653aed75737a") in {(e.kind, e.target) for e in edges}
    v7 = [e for e in edges if e.target == "20250924151101.2225820-1-patrick.roy@campus.lmu.de"]
    assert [(e.kind, e.version) for e in v7] == [("previous-revision", 7)]
    assert v7[0].evidence == "v7: https://lore.kernel.org/kvm/20250924151101.2225820-1-patrick.roy@campus.lmu.de"
    assert _kinds(edges, "20251114151828.98165-1-kalyazin@amazon.com") == ["related"]
    assert not [e for e in edges if e.kind == "depends-on"]


def test_no_patch_body_in_the_archive_claims_a_dependency():
    """Patches mention links as context ("posted that fix separately [1]"): never depends-on."""
    for name in ["gmem-direct-map-removal-rfc-v3.mbox", "gmem-direct-map-removal-v4.mbox",
                 "gmem-direct-map-removal-v7-split-send.mbox", "gmem-direct-map-removal-v8-qp.mbox",
                 "kvm-gmem-uffd-minor-v2.mbox", "kvm-gmem-uffd-minor-v3.mbox"]:
        for msg in read_mails(name)[1:]:
            edges = discover_text_edges(msgid_of(msg), plain_body(msg))
            assert not [e for e in edges if e.kind in ("depends-on", "supersedes")], (name, msg["subject"])
    rfc_6 = read_mails("gmem-direct-map-removal-rfc-v3.mbox")[6]
    [e] = discover_text_edges(msgid_of(rfc_6), plain_body(rfc_6))
    assert (e.kind, e.target) == ("related", "20241024095956.3668818-1-roypat@amazon.co.uk")


# ---------------------------------------------------------------- prose, synthetic

def test_list_after_a_lead_in_inherits_its_meaning():
    body = ("This series depends on:\n\n"
            "  - https://lore.kernel.org/linux-mm/20240101.1-1-a@example.org/\n"
            "  - https://lore.kernel.org/linux-mm/20240202.2-1-b@example.org/\n\n"
            "Some unrelated paragraph.\n\n"
            "- https://lore.kernel.org/linux-mm/20240303.3-1-c@example.org/\n")
    edges = discover_text_edges(ME, body)
    assert [(e.target[:10], e.kind) for e in edges] == [
        ("20240101.1", "depends-on"), ("20240202.2", "depends-on"), ("20240303.3", "related")]
    assert edges[0].evidence.startswith("This series depends on:")


def test_two_references_after_one_verb_are_both_dependencies():
    body = ("This depends on Alice's cleanup [1] and Bob's helpers [2], and it supersedes [3].\n"
            "With Carol's work [4] it gets faster.\n\n"
            "[1] https://lore.kernel.org/r/20240101.1-1-a@example.org\n"
            "[2]: https://lore.kernel.org/r/20240202.2-1-b@example.org\n"
            "[3] https://lore.kernel.org/r/20240303.3-1-c@example.org\n"
            "[4] https://lore.kernel.org/r/20240404.4-1-d@example.org\n")
    kinds = {e.target[:10]: e.kind for e in discover_text_edges(ME, body)}
    assert kinds == {"20240101.1": "depends-on", "20240202.2": "depends-on",
                     "20240303.3": "supersedes", "20240404.4": "related"}


def test_negated_and_reverse_statements_are_not_dependencies():
    body = ("Unlike v2, this no longer depends on the old allocator series [1].\n"
            "Note this series was superseded by [2].\n"
            "It is also a prerequisite for the huge page work [3].\n\n"
            "[1] https://lore.kernel.org/r/20240101.1-1-a@example.org\n"
            "[2] https://lore.kernel.org/r/20240202.2-1-b@example.org\n"
            "[3] https://lore.kernel.org/r/20240303.3-1-c@example.org\n")
    edges = {e.target[:10]: e for e in discover_text_edges(ME, body)}
    assert edges["20240101.1"].kind == "related" and edges["20240101.1"].extra == {"negated": "depends-on"}
    assert edges["20240202.2"].kind == "related" and edges["20240202.2"].extra == {"reverse": "supersedes"}
    assert edges["20240303.3"].kind == "related" and edges["20240303.3"].extra == {"reverse": "depends-on"}


def test_inline_link_in_parentheses_and_link_to_a_patch_keep_the_msgid_as_written():
    body = ("This applies on top of the folio series "
            "(https://lore.kernel.org/linux-mm/20250318161823.4005529-4-tabba@google.com/T/).\n")
    [e] = discover_text_edges(ME, body)
    assert (e.kind, e.target) == ("depends-on", "20250318161823.4005529-4-tabba@google.com")


def test_b4_link_to_previous_version_is_a_previous_revision():
    body = ("Changes in v3:\n- fix things\n"
            "- Link to v2: https://lore.kernel.org/r/20240101-topic-v2-0-abc@kernel.org\n\n"
            "Changes in v2:\n- Link to v1: https://patch.msgid.link/20231201-topic-v1-0-def@kernel.org\n")
    edges = discover_text_edges("20240201-topic-v3-0-xyz@kernel.org", body)
    assert [(e.kind, e.version, e.target) for e in edges] == [
        ("previous-revision", 2, "20240101-topic-v2-0-abc@kernel.org"),
        ("previous-revision", 1, "20231201-topic-v1-0-def@kernel.org")]


def test_a_mail_never_depends_on_itself_or_its_own_patches():
    body = ("This series is based on [1] and on [2].\n\n"
            f"[1] https://lore.kernel.org/kvm/{UFFD_V3}/\n"
            "[2] https://lore.kernel.org/kvm/20250404154352.23078-3-kalyazin@amazon.com/\n"
            "Based-on: <20250404154352.23078-1-kalyazin@amazon.com>\n")
    assert discover_text_edges(UFFD_V3, body) == []


def test_reply_prose_is_marked_as_reply_and_quoted_prose_is_ignored():
    body = ("On Fri, 4 Apr 2025 Nikita wrote:\n"
            "> This series is built on top of the Fuad's v7 [1].\n"
            "> [1] https://lore.kernel.org/kvm/20250318161823.4005529-1-tabba@google.com/T/\n\n"
            "Note that this also needs Ackerley's fix "
            "https://lore.kernel.org/kvm/20250401.1-1-ackerley@google.com/ to build.\n")
    [e] = discover_text_edges("reply@example.org", body, is_reply=True)
    assert (e.kind, e.target, e.how) == ("depends-on", "20250401.1-1-ackerley@google.com", "reply")


def test_bare_message_id_in_prose_counts_but_mail_addresses_do_not():
    body = ("This is based on <20240101120000.12345-1-a@example.org>.\n\n"
            "Signed-off-by: Alice Example <alice@example.org>\n"
            "Cc: Bob <bob2@example.org>\n")
    [e] = discover_text_edges(ME, body)
    assert (e.kind, e.target) == ("depends-on", "20240101120000.12345-1-a@example.org")


def test_edges_serialise_to_plain_dicts():
    [e] = discover_text_edges(ME, "Depends-on: <20240101.1-1-a@example.org>\n")
    assert e.to_dict() == {"kind": "depends-on", "target": "20240101.1-1-a@example.org", "target_type": "msgid",
                           "how": "tag", "evidence": "Depends-on: <20240101.1-1-a@example.org>",
                           "source_msgid": ME, "version": None, "extra": {}}


# ---------------------------------------------------------------- blobs

FUAD_V7_3 = "20250318161823.4005529-4-tabba@google.com"


def _mapping(cover: str, third_patch: str, extra_files=()) -> dict:
    """Synthetic Fuad series: 3/9 produces guest_memfd.c blob fbf89e643add."""
    return {"msgid": cover, "patches": [
        {"msgid": cover.replace("-1-", "-2-"), "files": [{"path": "mm/swap.c", "old": "aaaaaaa1", "new": "aaaaaaa2"}]},
        {"msgid": third_patch, "files": [
            {"path": "virt/kvm/guest_memfd.c", "old": "5fc414becae5", "new": "fbf89e643add"}, *extra_files]},
    ]}


def test_uffd_v3_patch_4_starts_from_the_blob_fuad_v7_3_produces():
    uffd = _revision_from_mbox("kvm-gmem-uffd-minor-v3.mbox")
    assert uffd["msgid"] == UFFD_V3
    edges = discover_blob_edges([uffd, _mapping(FUAD_V7, FUAD_V7_3)], UFFD_V3)
    [e] = edges
    assert (e.kind, e.target, e.how, e.target_type) == ("depends-on", FUAD_V7, "blob", "msgid")
    assert e.source_msgid == "20250404154352.23078-5-kalyazin@amazon.com"  # patch 4/6
    assert e.extra == {"file": "virt/kvm/guest_memfd.c", "blob": "fbf89e643add", "patch": FUAD_V7_3}
    assert e.evidence == f"virt/kvm/guest_memfd.c starts from fbf89e643add, produced by {FUAD_V7_3}"


def test_blob_produced_by_two_revisions_picks_neither():
    uffd = _revision_from_mbox("kvm-gmem-uffd-minor-v3.mbox")
    v8 = "20250410.1-1-tabba@google.com"
    edges = discover_blob_edges([uffd, _mapping(FUAD_V7, FUAD_V7_3), _mapping(v8, "20250410.1-4-tabba@google.com")],
                                UFFD_V3)
    assert not [e for e in edges if e.kind == "depends-on"]
    assert sorted(e.target for e in edges) == sorted([FUAD_V7, v8])
    assert all(e.kind == "related" and e.extra["ambiguous"] == sorted([FUAD_V7, v8]) for e in edges)


def test_ambiguous_blob_goes_to_the_revision_another_blob_proves():
    uffd = _revision_from_mbox("kvm-gmem-uffd-minor-v3.mbox")
    # only v7 also produced the mm_types.h blob uffd v3 1/6 starts from (0234f14f2aa6)
    only_v7 = {"path": "include/linux/mm_types.h", "old": "1234567aaaaa", "new": "0234f14f2aa6"}
    v8 = "20250410.1-1-tabba@google.com"
    edges = discover_blob_edges(
        [uffd, _mapping(FUAD_V7, FUAD_V7_3, [only_v7]), _mapping(v8, "20250410.1-4-tabba@google.com")], UFFD_V3)
    assert sorted((e.kind, e.target, e.extra["file"]) for e in edges) == [
        ("depends-on", FUAD_V7, "include/linux/mm_types.h"),
        ("depends-on", FUAD_V7, "virt/kvm/guest_memfd.c")]
    guest = next(e for e in edges if e.extra["file"] == "virt/kvm/guest_memfd.c")
    assert v8 in guest.evidence  # the other candidate is named


def test_blob_rules_abbreviations_new_files_and_own_patches():
    target = {"msgid": "t-1@x.org", "patches": [
        {"msgid": "t-2@x.org", "files": [
            {"path": "a.c", "old": "abcdef1", "new": "1111111"},          # 7 hex vs 12 hex: same blob
            {"path": "new.c", "old": "0000000", "new": "2222222"},        # new file: proves nothing
            {"path": "b.c", "old": "abcdef", "new": "3333333"}]},         # 6 hex: too short to trust
        {"msgid": "t-3@x.org", "files": [{"path": "a.c", "old": "1111111", "new": "4444444"}]},  # own result
    ]}
    other = {"msgid": "o-1@x.org", "patches": [{"msgid": "o-2@x.org", "files": [
        {"path": "a.c", "old": "9999999", "new": "abcdef1234ab"},
        {"path": "new.c", "old": "9999999", "new": "0000000000"},
        {"path": "b.c", "old": "9999999", "new": "abcdef"},
        {"path": "a.c", "old": "abcdef1234ab", "new": "1111111"}]}]}
    edges = discover_blob_edges([target, other], "t-1@x.org")
    assert [(e.kind, e.target, e.extra["file"], e.extra["blob"]) for e in edges] == [
        ("depends-on", "o-1@x.org", "a.c", "abcdef1")]


def test_prose_names_bases_as_sha_tag_or_branch_unless_negated():
    body = ("This applies on top of 4701f33a1070 (\"Linux 6.14-rc7\").\n"
            "Rebased on Linux 6.15-rc1.\n\n"
            "[ based on net-next ]\n\n"
            "It is based on the latest kvm-x86/next.\n"
            "It is not based on 1234abcd5678 anymore.\n")
    edges = discover_text_edges(ME, body)
    assert [(e.kind, e.target, e.extra["ref"], e.how, e.target_type) for e in edges] == [
        ("base", "4701f33a1070", "sha", "prose", "commit"),
        ("base", "v6.15-rc1", "tag", "prose", "commit"),
        ("base", "net-next", "branch", "prose", "commit"),
        ("base", "kvm-x86/next", "branch", "prose", "commit"),
    ]


# Change-log headings as written on linux-kselftest 2019-2021 (a survey of the archive):
# the version each one compares with.
_HEADINGS = [("Changes since v2:", 2), ("Change since v2", 2), ("Changes in v3:", 2), ("v2 -> v3:", 2),
             ("Since v1:", 1), ("Changelog:", None), ("Changes from v2:", 2), ("v2 --> v3", 2),
             ("Changes v2->v3:", 2), ("Changes for v3:", 2), ("Change Log:", None),
             ("Changelog v2 -> v3", 2), ("Change log from v2:", 2), ("Changes since last revision:", None),
             ("Changes from RFC V2", 2), ("Changed since v2:", 2), ("Changes since RFC:", None),
             ("Changes in v1:", None)]
_LINK = "https://lore.kernel.org/r/20200101120000.1234-1-a@b.com"


@pytest.mark.parametrize("heading, version", _HEADINGS)
def test_a_link_under_a_change_log_heading_names_the_previous_revision(heading, version):
    body = f"Intro text.\n\n{heading}\n- reworked the parser\n- dropped a patch ({_LINK})\n"
    edges = discover_text_edges("cover@x", body)
    assert [(e.kind, e.target, e.version) for e in edges] == [
        ("previous-revision", "20200101120000.1234-1-a@b.com", version)]


@pytest.mark.parametrize("heading, version", _HEADINGS)
def test_a_change_log_heading_with_its_link_on_the_line_names_the_previous_revision(heading, version):
    edges = discover_text_edges("cover@x", f"Intro.\n\n{heading.rstrip(':')}: {_LINK}\n")
    assert [(e.kind, e.version) for e in edges] == [("previous-revision", version)]


@pytest.mark.parametrize("text", ["Changes the way the test runs.", "Since we have lib/*test*.c in a few",
                                  "Changelog entries are below", "version=1.2.3"])
def test_prose_that_starts_like_a_change_log_is_not_a_heading(text):
    assert changelog_heading(text) == (False, None)


def test_a_dependency_under_a_change_log_heading_stays_a_dependency():
    body = f"Changes in v3:\n- rebased on top of {_LINK}\n"
    assert [e.kind for e in discover_text_edges("cover@x", body)] == ["depends-on"]


def test_a_singular_change_heading_with_a_numbered_reference_names_the_previous_revision():
    body = ("Series text.\n\nChange since v2 [2]:\n- fixed the locking\n\n"
            "[2] https://lore.kernel.org/all/20250101-v2-0-abc@example.org/\n")
    edges = discover_text_edges("cover@x", body)
    assert [(e.kind, e.target, e.version) for e in edges] == [("previous-revision", "20250101-v2-0-abc@example.org", 2)]


@pytest.mark.parametrize("line, target, extra", [
    ("based-on: livepatching.git, for-5.9/selftests-cleanup", "for-5.9/selftests-cleanup",
     {"ref": "branch", "repo": "livepatching.git"}),  # as linux-kselftest got it, 2020-06-10
    ("Based-on: livepatching.git/for-5.9/selftests-cleanup", "for-5.9/selftests-cleanup",
     {"ref": "branch", "repo": "livepatching.git"}),
    ("Based-on: kvm/next", "kvm/next", {"ref": "branch"}),
    ("Based-on: v6.14-rc7", "v6.14-rc7", {"ref": "tag"}),
])
def test_a_based_on_tag_naming_a_branch_or_tag_is_the_base(line, target, extra):
    [edge] = discover_text_edges("cover@x", f"Cover.\n\n{line}\n")
    assert (edge.kind, edge.target, edge.target_type, edge.how, edge.extra) == ("base", target, "commit", "tag", extra)


def test_a_based_on_tag_in_prose_words_names_nothing():
    assert discover_text_edges("cover@x", "Cover.\n\nBased-on: the latest mainline as of today\n") == []


def test_based_on_in_a_patch_notes_between_two_separators_is_a_tag():
    body = ("Fix a leak.\n\nSigned-off-by: Ann <ann@example.org>\n---\nBased-on: 20250101.1-1-x@example.org\n---\n"
            " a.c | 1 +\n 1 file changed, 1 insertion(+)\n\ndiff --git a/a.c b/a.c\nindex 1111111..2222222 100644\n"
            "--- a/a.c\n+++ b/a.c\n@@ -1 +1,2 @@\n a\n+b\n-- \n2.43.0\n")
    [edge] = discover_text_edges("p1@x", body)
    assert (edge.kind, edge.target, edge.how) == ("depends-on", "20250101.1-1-x@example.org", "tag")
