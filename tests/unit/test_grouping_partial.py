"""Series that reached a list only in part (the patches Cc'd to it, answering a cover that
went to other lists) are grouped by the absent thread root, version, N and sender."""
from untangle import grouping


def patch(msgid, number, total=14, version=1, reply="cover@x", refs=None, sender="ann@x.org"):
    return {"msgid": msgid, "kind": "patch", "number": number, "total": total, "version": version,
            "in_reply_to": reply, "references": refs if refs is not None else [reply], "from_email": sender}


def test_patches_answering_one_absent_cover_share_an_anchor_naming_it():
    mails = [patch("p2@x", 2), patch("p5@x", 5), patch("p9@x", 9)]
    lookup = {m["msgid"]: m for m in mails}.get
    anchors = {grouping.anchor_of(m, lookup) for m in mails}
    assert len(anchors) == 1
    assert grouping.partial_root(anchors.pop()) == "cover@x"


def test_a_v7_patch_sent_into_the_v8_thread_and_another_senders_patch_are_not_part_of_v8():
    v8 = patch("a@x", 1, total=2, version=8)
    v7 = patch("b@x", 2, total=2, version=7)
    other = patch("c@x", 2, total=2, version=8, sender="bob@x.org")
    lookup = {m["msgid"]: m for m in (v8, v7, other)}.get
    assert len({grouping.anchor_of(m, lookup) for m in (v8, v7, other)}) == 3


def test_deep_threading_with_gaps_still_names_the_cover():
    p3 = patch("p3@x", 3, reply="p2@x", refs=["cover@x", "p1@x", "p2@x"])
    p4 = patch("p4@x", 4, reply="p3@x", refs=["cover@x", "p1@x", "p2@x", "p3@x"])
    p7 = patch("p7@x", 7, reply="p6@x", refs=["cover@x", "p1@x", "p2@x", "p3@x", "p4@x", "p5@x", "p6@x"])
    lookup = {m["msgid"]: m for m in (p3, p4, p7)}.get
    assert {grouping.partial_root(grouping.anchor_of(m, lookup)) for m in (p3, p4, p7)} == {"cover@x"}


def test_a_v8_cover_sent_in_reply_to_a_stored_v7_is_the_root_not_v7():
    v7_cover = {"msgid": "v7@x", "kind": "cover", "number": 0, "total": 2, "version": 7,
                "in_reply_to": None, "references": [], "from_email": "ann@x.org"}
    p1 = patch("v8p1@x", 1, total=2, version=8, reply="v8@x", refs=["v7@x", "v8@x"])
    assert grouping.partial_root(grouping.anchor_of(p1, {"v7@x": v7_cover, "v8p1@x": p1}.get)) == "v8@x"


def test_a_patch_answering_a_stored_mail_or_a_single_patch_is_not_partial():
    question = {"msgid": "q@x", "kind": "other", "in_reply_to": None, "references": [], "from_email": "bob@x.org"}
    answer = patch("p1@x", 1, total=2, reply="q@x")
    assert grouping.anchor_of(answer, {"q@x": question, "p1@x": answer}.get) == "p1@x"
    single = patch("s@x", None, total=None, reply="report@x")
    assert grouping.anchor_of(single, {"s@x": single}.get) == "s@x"


def test_a_v2_answering_v1s_absent_cover_names_its_own_runs_cover():
    # lmb@cloudflare.com, 2020-01-24 in linux-kselftest: v2 1/4..4/4 answer their cover, which
    # answers v1's; neither cover reached the list.
    v1 = "20200123165934.9584-1-lmb@cloudflare.com"
    v2 = "20200124112754.19664-1-lmb@cloudflare.com"
    p = patch("20200124112754.19664-2-lmb@cloudflare.com", 1, total=4, version=2, reply=v2, refs=[v1, v2])
    assert grouping.partial_root(grouping.anchor_of(p, {p["msgid"]: p}.get)) == v2
