"""Series in flight together on one list, applied onto a real git tree (the demo tree) and
merged in memory pairwise: two series changing the same lines conflict, one built on
another does not, one touching other files is not even compared."""
import difflib
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from reviewapp.models import ApplyRun, InflightConflict, Revision
from reviewapp.services import inflight, trees
from reviewapp.services.ingest import ingest
from untangle import gitrepo

pytestmark = pytest.mark.django_db

LIST = "linux-mm"


def _diff(path: str, old: str, new: str) -> str:
    body = "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"a/{path}", f"b/{path}", n=3))
    return f"diff --git a/{path} b/{path}\n{body}"


def _posting(stem: str, title: str, who: str, changes: list[tuple[str, str, str]], day: int, cover: str = ""):
    """A cover and one patch per (path, old text, new text), dated `day` days ago."""
    when = (timezone.now() - timedelta(days=day)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    n = len(changes)
    head = f"{stem}-0@example.org"
    mails = [(f"From: {who}\nSubject: [PATCH 0/{n}] {title}\nMessage-ID: <{head}>\nDate: {when}\n\n"
              f"{cover or 'A series.'}\n").encode()]
    for i, (path, old, new) in enumerate(changes, 1):
        mails.append((f"From: {who}\nSubject: [PATCH {i}/{n}] {title}: part {i}\nMessage-ID: <{stem}-{i}@example.org>\n"
                      f"In-Reply-To: <{head}>\nReferences: <{head}>\nDate: {when}\n\n"
                      f"Part {i}.\n\nSigned-off-by: {who}\n---\n{_diff(path, old, new)}-- \n2.47.0\n").encode())
    return mails


@pytest.fixture
def tree(data_dir, demo_source):
    return trees.add_tree(LIST, str(demo_source))


def _file(tree, path: str) -> str:
    repo = trees.ensure_mirror(tree)
    return gitrepo.read_file(repo, gitrepo.default_branch(repo), path).decode()


def _replace_line(text: str, index: int, new: str) -> str:
    lines = text.splitlines(keepends=True)
    lines[index] = new + "\n"
    return "".join(lines)


def test_same_lines_conflict_a_series_built_on_another_does_not_and_other_files_are_not_compared(tree, capsys):
    shmem = _file(tree, "mm/shmem.c")
    kvm = _file(tree, "virt/kvm/kvm_main.c")
    line = len(shmem.splitlines()) // 2
    a_text = _replace_line(shmem, line, "/* Ann: the shmem fault path, reworked */")
    ingest(_posting("ann", "mm: shmem rework", "Ann Dev <ann@example.org>", [("mm/shmem.c", shmem, a_text)], 5),
           LIST)
    ingest(_posting("bob", "mm: shmem cleanup", "Bob Hack <bob@example.org>",
                    [("mm/shmem.c", shmem, _replace_line(shmem, line, "/* Bob: the same line, otherwise */"))], 4),
           LIST)
    ingest(_posting("cat", "mm: on top of Ann's rework", "Cat Lee <cat@example.org>",
                    [("mm/shmem.c", a_text, _replace_line(a_text, line + 2, "/* Cat: after Ann */"))], 3,
                    cover="Based-on: <ann-0@example.org>"), LIST)
    ingest(_posting("dan", "KVM: elsewhere", "Dan Kim <dan@example.org>",
                    [("virt/kvm/kvm_main.c", kvm, _replace_line(kvm, 3, "/* Dan */"))], 2), LIST)
    result = inflight.compute(LIST)
    assert {s["msgid"]: s["apply"] for s in result.open} == {
        "ann-0@example.org": "applied", "bob-0@example.org": "applied", "cat-0@example.org": "applied",
        "dan-0@example.org": "applied"}
    pairs = {(c["a"], c["b"]) for c in result.conflicts}
    # Ann and Bob change one line two ways; Cat carries Ann's change, so Bob's collides with it too.
    assert pairs == {("ann-0@example.org", "bob-0@example.org"), ("bob-0@example.org", "cat-0@example.org")}
    assert result.compared == 3  # Dan shares no file with anyone: never merged
    ann_bob = InflightConflict.objects.get(a__msgid="ann-0@example.org", b__msgid="bob-0@example.org")
    [f] = ann_bob.files
    assert (f["path"], f["kind"], f["hunk_count"]) == ("mm/shmem.c", "content", 1)
    assert "/* Ann: the shmem fault path, reworked */" in f["hunks"][0]["ours"]
    assert "/* Bob: the same line, otherwise */" in f["hunks"][0]["theirs"]
    # Ann and Cat share Ann's chain: merged over it (their merge base is Ann's result), cleanly.
    assert not InflightConflict.objects.filter(a__msgid="ann-0@example.org", b__msgid="cat-0@example.org").exists()
    # The integration branch: Ann, then Cat on top of her, then Dan; Bob is left out, saying why.
    i = result.integration
    assert [s["msgid"] for s in i["included"]] == ["ann-0@example.org", "cat-0@example.org", "dan-0@example.org"]
    assert [s["commits"] for s in i["included"]] == [1, 1, 1]  # Ann's commit is not replayed for Cat
    assert i["skipped"] == [{"msgid": "bob-0@example.org", "title": "mm: shmem cleanup v1", "files": ["mm/shmem.c"],
                             "with": ["ann-0@example.org", "cat-0@example.org"],
                             "with_titles": ["mm: shmem rework v1", "mm: on top of Ann's rework v1"],
                             "reason": "conflicts with what is stacked"}]
    repo = trees.ensure_mirror(tree)
    assert gitrepo.resolve(repo, f"refs/heads/integration/{LIST}") == i["head"]
    stacked = gitrepo.read_file(repo, i["head"], "mm/shmem.c").decode()
    assert "/* Ann: the shmem fault path, reworked */" in stacked and "/* Cat: after Ann */" in stacked
    assert "/* Bob" not in stacked
    assert "/* Dan */" in gitrepo.read_file(repo, i["head"], "virt/kvm/kvm_main.c").decode()
    call_command("inflight", LIST, "--json")
    out = json.loads(capsys.readouterr().out)
    assert {(c["a"], c["b"]) for c in out["conflicts"]} == pairs and out["pairs_compared"] == 3


def test_pages_and_api_show_the_conflicts_with_both_sides_hunks(tree, client):
    shmem = _file(tree, "mm/shmem.c")
    line = 10
    ingest(_posting("ann", "mm: shmem rework", "Ann Dev <ann@example.org>",
                    [("mm/shmem.c", shmem, _replace_line(shmem, line, "/* Ann <b>was</b> here */"))], 5), LIST)
    ingest(_posting("bob", "mm: shmem cleanup", "Bob Hack <bob@example.org>",
                    [("mm/shmem.c", shmem, _replace_line(shmem, line, "/* Bob */"))], 4), LIST)
    assert client.get(f"/api/lists/{LIST}/inflight").status_code == 404  # nothing computed yet
    inflight.compute(LIST)
    page = client.get("/series/ann-0@example.org/").content.decode()
    conflicts = page.split('id="conflicts"', 1)[1].split("</p>", 1)[0]
    assert "mm: shmem cleanup v1" in conflicts and "mm/shmem.c, 1 hunk;" in conflicts
    from reviewapp.services.graph import graph_for
    graph_for(Revision.objects.get(msgid="bob-0@example.org"))
    graph_page = client.get("/graph/bob-0@example.org/").content.decode()
    assert "mm: shmem rework v1" in graph_page.split('id="conflicts"', 1)[1].split("</p>", 1)[0]
    c = InflightConflict.objects.get()
    inflight.compute(LIST)  # recomputed: the row is new, the conflict is not
    assert InflightConflict.objects.get().first_seen == c.first_seen
    c = InflightConflict.objects.get()
    detail = client.get(f"/conflicts/{c.id}/").content.decode()
    assert "/* Ann &lt;b&gt;was&lt;/b&gt; here */" in detail and "/* Bob */" in detail and "<b>was" not in detail
    listed = client.get(f"/lists/{LIST}/inflight").content.decode()
    assert listed.count('class="badge conflict"') == 2 and f'href="/conflicts/{c.id}/"' in listed
    api = client.get(f"/api/lists/{LIST}/inflight").json()
    assert [(x["a"], x["b"]) for x in api["conflicts"]] == [("ann-0@example.org", "bob-0@example.org")]
    assert {s["msgid"]: s["apply"] for s in api["open"]} == {"ann-0@example.org": "applied",
                                                            "bob-0@example.org": "applied"}
    from reviewapp.models import Subscription
    from reviewapp.services import digests
    sub = Subscription.objects.create(address="rev@example.org", name="mm", lists=[LIST])
    item = digests.build_item(Revision.objects.get(msgid="bob-0@example.org"), sub, digests.preview_period(sub))
    assert [(c.msgid, c.files, c.new_in_period) for c in item.conflicts] == [
        ("ann-0@example.org", ("mm/shmem.c",), True)]
    mine = client.get("/api/revisions/bob-0@example.org/conflicts").json()
    assert [(x["with"], x["hunk_count"], [f["path"] for f in x["files"]]) for x in mine["conflicts"]] == [
        ("ann-0@example.org", 1, ["mm/shmem.c"])]


def test_old_merged_away_and_superseded_series_are_not_in_flight(tree):
    shmem = _file(tree, "mm/shmem.c")
    ingest(_posting("old", "mm: long ago", "Ann Dev <ann@example.org>",
                    [("mm/shmem.c", shmem, _replace_line(shmem, 5, "/* old */"))], 90), LIST)
    ingest(_posting("v1", "mm: thing", "Bob Hack <bob@example.org>",
                    [("mm/shmem.c", shmem, _replace_line(shmem, 7, "/* v1 */"))], 9), LIST)
    v2 = _posting("v2", "mm: thing", "Bob Hack <bob@example.org>",
                  [("mm/shmem.c", shmem, _replace_line(shmem, 7, "/* v2 */"))], 8)
    v2 = [m.replace(b"[PATCH ", b"[PATCH v2 ") for m in v2]
    ingest(v2, LIST)
    assert Revision.objects.get(msgid="v2-0@example.org").version == 2
    assert [r.msgid for r in inflight.open_revisions(inflight.MailingList.objects.get(name=LIST))] == [
        "v2-0@example.org"]


def test_a_list_without_its_tree_says_what_to_do(data_dir):
    ingest([b"From: a@b.org\nSubject: [PATCH] x\nMessage-ID: <x-1@example.org>\n\nx\n"], "netdev")
    with pytest.raises(inflight.InflightError, match="no tree named 'netdev'"):
        inflight.compute("netdev")
    with pytest.raises(inflight.InflightError, match="no mailing list named"):
        inflight.compute("no-such-list")


def test_a_recompute_reuses_the_runs_nothing_changed_under_and_applies_the_new_revision(tree):
    shmem = _file(tree, "mm/shmem.c")
    kvm = _file(tree, "virt/kvm/kvm_main.c")
    ingest(_posting("ann", "mm: shmem rework", "Ann Dev <ann@example.org>",
                    [("mm/shmem.c", shmem, _replace_line(shmem, 10, "/* Ann */"))], 5), LIST)
    ingest(_posting("dan", "KVM: elsewhere", "Dan Kim <dan@example.org>",
                    [("virt/kvm/kvm_main.c", kvm, _replace_line(kvm, 3, "/* Dan */"))], 4), LIST)
    first = {s["msgid"]: s["run"] for s in inflight.compute(LIST).open}
    again = {s["msgid"]: s["run"] for s in inflight.compute(LIST).open}
    assert again == first  # nothing changed: no apply at all
    v2 = [m.replace(b"[PATCH ", b"[PATCH v2 ").replace(b"ann-", b"ann2-").replace(b"/* Ann */", b"/* Ann, v2 */")
          for m in _posting("ann", "mm: shmem rework", "Ann Dev <ann@example.org>",
                            [("mm/shmem.c", shmem, _replace_line(shmem, 10, "/* Ann */"))], 1)]
    ingest(v2, LIST)
    third = {s["msgid"]: s["run"] for s in inflight.compute(LIST).open}
    assert set(third) == {"ann2-0@example.org", "dan-0@example.org"}  # v2 replaced v1
    assert third["dan-0@example.org"] == first["dan-0@example.org"]
    assert third["ann2-0@example.org"] not in first.values()


def test_the_demo_story_the_series_built_on_mapping_v7_collide_with_v8_and_james_collides_with_none_of_them(demo):
    from tests.support.demo import FASTPATH, MAPPING_V8, RESTRICTED, UFFD_V3
    james = "20250109193512.2210387-1-jthoughton@google.com"
    mlist = Revision.objects.get(msgid=UFFD_V3).mailing_list.name
    result = inflight.compute(mlist, "demo", days=100000)
    assert all(s["apply"] == "applied" for s in result.open), result.open
    pairs = {frozenset((c["a"], c["b"])) for c in result.conflicts}
    # v8 rewrote what v7 gave uffd minor v3, restricted mapping and the fast path to build on.
    assert {frozenset((MAPPING_V8, m)) for m in (UFFD_V3, RESTRICTED, FASTPATH)} <= pairs
    # James's userfault series is named by uffd minor v3 but changes none of its lines.
    assert frozenset((james, UFFD_V3)) not in pairs
    stacked = [s["msgid"] for s in result.integration["included"]]
    assert UFFD_V3 in stacked and james in stacked
    left = {s["msgid"]: s for s in result.integration["skipped"]}
    assert left[MAPPING_V8]["with"] == [UFFD_V3] and "virt/kvm/guest_memfd.c" in left[MAPPING_V8]["files"]


@pytest.mark.django_db(transaction=True)
def test_in_chromium_the_inflight_page_and_a_conflicts_two_sides(demo, page):
    from tests.support.browser import screenshot
    from tests.support.demo import MAPPING_V8, UFFD_V3
    mlist = Revision.objects.get(msgid=UFFD_V3).mailing_list.name
    inflight.compute(mlist, "demo", days=100000)
    page.goto(f"{page.base}/lists/{mlist}/inflight")
    rows = page.locator("#inflight-conflicts tbody tr")
    assert rows.count() == InflightConflict.objects.count() >= 1
    assert "left out" in page.inner_text("#integration-skipped")
    listed = screenshot(page, "inflight-list")
    c = InflightConflict.objects.get(a__msgid=UFFD_V3, b__msgid=MAPPING_V8) if InflightConflict.objects.filter(
        a__msgid=UFFD_V3, b__msgid=MAPPING_V8).exists() else InflightConflict.objects.get(a__msgid=MAPPING_V8,
                                                                                      b__msgid=UFFD_V3)
    page.goto(f"{page.base}/conflicts/{c.id}/")
    hunk = page.locator("table.conflict-hunk").first
    assert hunk.locator("td").count() == 2 and "guest_memfd" in page.inner_text("h2")
    shot = screenshot(page, "inflight-conflict")
    page.goto(f"{page.base}/series/{UFFD_V3}/")
    assert "Conflicts with:" in page.inner_text("#conflicts")
    assert listed.stat().st_size > 10_000 and shot.stat().st_size > 10_000


def test_each_side_of_a_stored_conflict_is_the_revision_it_names_whatever_their_msgids_sort_as(tree):
    shmem = _file(tree, "mm/shmem.c")
    ingest(_posting("zoe", "mm: first posted", "Zoe Ray <zoe@example.org>",
                    [("mm/shmem.c", shmem, _replace_line(shmem, 12, "/* Zoe */"))], 5), LIST)
    ingest(_posting("abe", "mm: posted later", "Abe Fox <abe@example.org>",
                    [("mm/shmem.c", shmem, _replace_line(shmem, 12, "/* Abe */"))], 4), LIST)
    inflight.compute(LIST)
    c = InflightConflict.objects.get()
    [hunk] = c.files[0]["hunks"]
    assert c.a.msgid == "zoe-0@example.org" and "/* Zoe */" in hunk["ours"] and "/* Abe */" in hunk["theirs"]


def test_the_integration_branch_is_a_tree_browsed_line_by_line_to_its_series(tree, client):
    shmem = _file(tree, "mm/shmem.c")
    kvm = _file(tree, "virt/kvm/kvm_main.c")
    line = len(shmem.splitlines()) // 2
    a_text = _replace_line(shmem, line, "/* Ann: reworked */")
    ingest(_posting("ann", "mm: shmem rework", "Ann Dev <ann@example.org>", [("mm/shmem.c", shmem, a_text)], 5),
           LIST)
    ingest(_posting("cat", "mm: on top of Ann's rework", "Cat Lee <cat@example.org>",
                    [("mm/shmem.c", a_text, _replace_line(a_text, line + 2, "/* Cat: after Ann */"))], 3,
                    cover="Based-on: <ann-0@example.org>"), LIST)
    ingest(_posting("dan", "KVM: elsewhere", "Dan Kim <dan@example.org>",
                    [("virt/kvm/kvm_main.c", kvm, _replace_line(kvm, 3, "/* Dan */"))], 2), LIST)
    i = inflight.compute(LIST).integration
    run = ApplyRun.objects.get(id=i["run"])
    assert (run.root, run.integration_of.name, run.head, run.status) == (None, LIST, i["head"], "applied")
    assert [a["msgid"] for a in run.applied] == ["ann-1@example.org", "cat-1@example.org", "dan-1@example.org"]
    repo = trees.ensure_mirror(tree)
    assert gitrepo.resolve(repo, run.ref) == run.head  # its own ref, kept when the branch moves on
    stats = client.get(f"/tree/{run.id}/mm/shmem.c").content.decode().split('id="stats"', 1)[1].split("</p>", 1)[0]
    assert "1 from mm: shmem rework v1" in stats and "1 from mm: on top of Ann&#x27;s rework v1" in stats
    assert "from KVM: elsewhere" not in stats
    assert "/* Dan */" in client.get(f"/tree/{run.id}/diff").content.decode()
    assert client.get(f"/tree/h/{run.head}/virt/kvm/kvm_main.c").status_code == 200
    listed = client.get(f"/lists/{LIST}/inflight").content.decode()
    assert f'href="/tree/{run.id}/"' in listed and "Run on the integration branch" not in listed  # not a maintainer
    api = client.get(f"/api/apply-runs/{run.id}/").json()
    assert (api["root"], api["integration_of"], api["head"]) == (None, LIST, run.head)
    # A series' own page browses its own chain, never the integration branch that holds it.
    page = client.get("/series/ann-0@example.org/").content.decode()
    assert f"/tree/{run.id}/" not in page
    assert inflight.compute(LIST).integration["run"] == run.id  # nothing changed: the same run, same permalinks


def test_a_recompute_merges_only_the_pairs_whose_heads_are_new(tree, monkeypatch):
    shmem = _file(tree, "mm/shmem.c")
    line = len(shmem.splitlines()) // 2
    a_text = _replace_line(shmem, line, "/* Ann */")
    ingest(_posting("ann", "mm: shmem rework", "Ann Dev <ann@example.org>", [("mm/shmem.c", shmem, a_text)], 5),
           LIST)
    ingest(_posting("bob", "mm: shmem cleanup", "Bob Hack <bob@example.org>",
                    [("mm/shmem.c", shmem, _replace_line(shmem, line, "/* Bob */"))], 4), LIST)
    ingest(_posting("eve", "mm: shmem far away", "Eve Lin <eve@example.org>",
                    [("mm/shmem.c", shmem, _replace_line(shmem, 5, "/* Eve */"))], 3), LIST)
    first = inflight.compute(LIST)
    assert first.compared == 3 and len(first.conflicts) == 1
    merges = []
    real = gitrepo.merge_check
    monkeypatch.setattr(gitrepo, "merge_check", lambda *a, **k: merges.append(a[2:]) or real(*a, **k))
    again = inflight.compute(LIST)
    assert merges == [] and again.conflicts == first.conflicts  # the same heads: nothing merged again
    assert InflightConflict.objects.get().hunk_count == 1
    ingest([m.replace(b"[PATCH ", b"[PATCH v2 ").replace(b"bob-", b"bob2-").replace(b"/* Bob */", b"/* Bob v2 */")
            for m in _posting("bob", "mm: shmem cleanup", "Bob Hack <bob@example.org>",
                              [("mm/shmem.c", shmem, _replace_line(shmem, line, "/* Bob */"))], 1)], LIST)
    third = inflight.compute(LIST)
    assert len(merges) == 2  # Bob v2 with Ann and with Eve; Ann with Eve is known clean
    assert [(c["a"], c["b"]) for c in third.conflicts] == [("ann-0@example.org", "bob2-0@example.org")]
