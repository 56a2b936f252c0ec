"""Line provenance on the demo chain (fixtures/demo): uffd minor v3 on mapping v7.

The oracle is independent of git blame: it replays the patches' own diffs, as
posted, onto the base file, tagging every added line with its patch. Both must
agree on every line of every file the chain touches, and the oracle must
reproduce the file at the chain's head byte for byte (so it is itself right).
"""
import json
import re

import pytest
from django.core.management import CommandError, call_command

from reviewapp.models import Patch, Revision
from reviewapp.services import provenance as prov
from reviewapp.services.apply import apply
from untangle import gitrepo

pytestmark = pytest.mark.django_db

UFFD_V3 = "20250404132740.18342-1-kalyazin@amazon.com"
MAPPING_V7 = "20250318142233.2716254-1-tabba@google.com"
MAPPING_V8 = "20250418120905.3320715-1-tabba@google.com"
UFFD_V2 = "20250402151209.51274-1-kalyazin@amazon.com"
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@pytest.fixture
def v3_run(demo):
    run = apply(Revision.objects.get(msgid=UFFD_V3), demo)
    assert run.status == "applied", run.error
    assert run.chain == [MAPPING_V7, UFFD_V3]
    return run


def replay(repo, base: str, patches: list[Patch]) -> dict[str, list[tuple[str, str | None]]]:
    """path -> [(line, patch msgid or None)] after applying the posted diffs in order."""
    files: dict[str, list[tuple[str, str | None]]] = {}

    def load(path):
        if path not in files:
            text = gitrepo.read_file(repo, base, path).decode()
            files[path] = [(x, None) for x in text.split("\n")[:-1]]
        return files[path]

    for p in patches:
        for section in re.split(r"(?m)^(?=diff --git )", p.diff):
            if not section.startswith("diff --git "):
                continue
            old, new = re.match(r"diff --git a/(\S+) b/(\S+)", section).groups()
            if re.search(r"(?m)^new file mode", section):
                files[new] = []
            elif re.search(r"(?m)^deleted file mode", section):
                load(old)
                del files[old]
                continue
            else:
                files[new] = load(old) if old == new else files.pop(old, None) or load(old)
            _apply_hunks(files[new], section, p.message.msgid)
    return files


def _hunks(section: str):
    """[(stated old start, [(tag, text)])] of one file's diff."""
    out = []
    for raw in section.split("\n"):
        m = HUNK.match(raw)
        if m:
            out.append((int(m.group(1)), []))
        elif out and raw[:1] in (" ", "-", "+"):
            out[-1][1].append((raw[:1], raw[1:]))
    return out


def _apply_hunks(lines, section, msgid):
    """Like `git apply`: each hunk where its pre-image matches, nearest the stated line
    (a chain with newer dependencies moves the context), no fuzz."""
    shift = 0  # earlier hunks' added minus removed lines, plus the offset they were found at
    for old_start, body in _hunks(section):
        pre = [t for tag, t in body if tag != "+"]
        stated = (old_start - 1 if pre else old_start) + shift
        at = next((p for d in range(len(lines) + 1) for p in (stated - d, stated + d)
                   if 0 <= p <= len(lines) - len(pre) and [x for x, _ in lines[p:p + len(pre)]] == pre), None)
        assert at is not None, f"{msgid}: hunk at {old_start} does not apply"
        shift += at - stated + sum(1 for tag, _ in body if tag == "+") - len([1 for tag, _ in body if tag == "-"])
        pos = at
        for tag, text in body:
            if tag == " ":
                pos += 1
            elif tag == "-":
                del lines[pos]
            else:
                lines.insert(pos, (text, msgid))
                pos += 1


def check_chain_against_posted_diffs(run) -> int:
    """Assert blame == replayed diffs on every line of every touched file; returns lines checked."""
    chain = prov.load_chain(run)
    patches = [Patch.objects.select_related("message").get(message__msgid=a["msgid"]) for a in run.applied]
    expected = replay(chain.repo, chain.base, patches)
    assert set(expected) == {p for p in prov.touched_paths(chain) if _exists(chain, p)}
    checked = 0
    for path, lines in expected.items():
        head_text = gitrepo.read_file(chain.repo, chain.head, path).decode()
        assert head_text == "".join(x + "\n" for x, _ in lines), f"oracle disagrees with git on {path}"
        got = [o.msgid if o else None for o in prov.line_owners(chain, path)]
        want = [m for _, m in lines]
        bad = [(n, w, g) for n, (w, g) in enumerate(zip(want, got), 1) if w != g]
        assert len(got) == len(want) and not bad, f"run {run.id} {path}: (line, posted, blamed) {bad[:5]}"
        checked += len(want)
    return checked


def _exists(chain, path) -> bool:
    try:
        return prov.path_kind(chain, path) == "blob"
    except prov.BrowseError:
        return False


def test_every_line_of_every_file_the_chain_touches_matches_the_posted_diffs(v3_run):
    assert check_chain_against_posted_diffs(v3_run) > 300
    chain = prov.load_chain(v3_run)
    owners = {o.revision.msgid if o else None for o in prov.line_owners(chain, "virt/kvm/guest_memfd.c")}
    assert owners == {None, MAPPING_V7, UFFD_V3}


def test_every_demo_chain_that_applies_is_traced_exactly(v3_run):
    """Whatever the demo holds: every revision's chain, as declared and with the newest deps."""
    tree = v3_run.tree
    traced = {}
    for rev in Revision.objects.order_by("date"):
        for newest in (False, True):
            run = apply(rev, tree, newest=newest)
            if run.status == "applied":
                traced[(rev.msgid, newest)] = (len(run.chain), check_chain_against_posted_diffs(run))
    assert len(traced) >= len(STORY_APPLIES)
    assert all((m, False) in traced for m in STORY_APPLIES)
    assert max(n for n, _ in traced.values()) >= 3  # the fast path: three series in one file


# From fixtures/demo/STORY.md ("Apply order"): roots that apply as declared.
STORY_APPLIES = [UFFD_V3, UFFD_V2, MAPPING_V7, MAPPING_V8, "20250410063119.40211-1-lena.brandt@example.org",
                 "20250319101548.2791123-1-tabba@google.com", "20250314110217.61230-1-kalyazin@amazon.com"]


def test_cli_prints_the_contract_for_every_line(v3_run, capsys):
    url = f"https://lore.kernel.org/kvm/{UFFD_V3}/T/#u"
    call_command("provenance", url, "--tree", "demo", "virt/kvm/guest_memfd.c", "--json")
    data = json.loads(capsys.readouterr().out)
    chain = prov.load_chain(v3_run)
    assert data["head"] == v3_run.head and data["path"] == "virt/kvm/guest_memfd.c"
    owners = prov.line_owners(chain, "virt/kvm/guest_memfd.c")
    assert [x["n"] for x in data["lines"]] == list(range(1, len(owners) + 1))
    assert [(x["msgid"], x["series"]) for x in data["lines"]] == [
        (o.msgid, o.revision.msgid) if o else (None, None) for o in owners]
    assert set(data["lines"][0]) == {"n", "msgid", "series"}


def test_cli_reuses_the_applied_run_instead_of_applying_again(v3_run, capsys):
    call_command("provenance", UFFD_V3, "--tree", "demo", "Makefile", "--json")
    data = json.loads(capsys.readouterr().out)
    assert {x["msgid"] for x in data["lines"]} == {None}  # nobody in the chain touched it
    assert v3_run.root.apply_runs.count() == 1


def test_cli_applies_when_nothing_was_applied_yet(demo, capsys):
    call_command("provenance", f"<{UFFD_V2}>", "--tree", "demo", "virt/kvm/guest_memfd.c", "--json")
    data = json.loads(capsys.readouterr().out)
    assert {x["series"] for x in data["lines"]} == {None, MAPPING_V7, UFFD_V2}
    assert Revision.objects.get(msgid=UFFD_V2).apply_runs.get().head == data["head"]


def test_cli_errors_go_to_stderr_with_a_nonzero_exit(v3_run):
    with pytest.raises(CommandError, match="no tree named"):
        call_command("provenance", UFFD_V3, "--tree", "nope", "Makefile")
    with pytest.raises(CommandError, match="does not exist") as e:
        call_command("provenance", UFFD_V3, "--tree", "demo", "no/such/file.c")
    assert e.value.returncode == 1


def test_cli_text_output_names_the_patch_on_each_line(v3_run, capsys):
    call_command("provenance", UFFD_V3, "--tree", "demo", "virt/kvm/guest_memfd.c")
    out = capsys.readouterr().out.split("\n")
    assert out[0] == f"virt/kvm/guest_memfd.c at {v3_run.head}"
    assert any(" base " in x for x in out[1:]) and any(" v3 3/4 " in x for x in out[1:])


def test_own_contribution_of_v3_starts_where_mapping_v7_ends(v3_run, client):
    chain = prov.load_chain(v3_run)
    v7, v3 = chain.revisions
    rev, text = prov.own_diff(chain, UFFD_V3)
    assert rev.before == v7.after and rev.after == chain.head
    posted = set(Patch.objects.filter(revision__msgid=UFFD_V3).values_list("files__path", flat=True))
    assert {f for f, _ in prov.file_sections(text)} == posted
    # Its "+" lines are exactly the head's lines that v3's posted diffs wrote: mapping
    # v7's additions are context here, never additions.
    patches = [Patch.objects.select_related("message").get(message__msgid=a["msgid"]) for a in v3_run.applied]
    by_v3 = {m for m in Patch.objects.filter(revision__msgid=UFFD_V3).values_list("message__msgid", flat=True)}
    for path, lines in replay(chain.repo, chain.base, patches).items():
        section = dict(prov.file_sections(text)).get(path, "")
        added = sorted(x[1:] for x in section.split("\n") if x.startswith("+") and not x.startswith("+++"))
        assert added == sorted(x for x, m in lines if m in by_v3), path
    page = client.get(f"/tree/{v3_run.id}/series/{UFFD_V3}")
    assert page.status_code == 200
    assert "On top of" in page.content.decode() and "v7" in page.content.decode()


def test_range_diff_of_the_dependency_shows_only_what_v8_changed(v3_run, client):
    """v7 -> v8 changed patch 3/4 only; the Link: trailers differ in every patch and are hidden."""
    assert apply(v3_run.root, v3_run.tree, newest=True).status == "applied"  # v8's chain
    assert apply(v3_run.root, v3_run.tree).status == "applied"  # the declared chain, newest again
    page = client.get(f"/series/{UFFD_V3}/")
    links = re.findall(r'<li class="dep-update"><a href="([^"]+)"', page.content.decode())
    assert len(links) == 1 and MAPPING_V7 in links[0] and MAPPING_V8 in links[0]
    rd = client.get(links[0].replace("&amp;", "&"))
    assert rd.status_code == 200
    text = rd.context["text"]
    verdicts = re.findall(r"(?m)^\s*\d+:\s+[0-9a-f]+ ([=!]) \s*\d+:", text)
    assert verdicts == ["=", "=", "!", "="], text[:400]
    raw = client.get(links[0].replace("&amp;", "&") + "&raw=1").context["text"]
    assert raw.count("Link: https://patch.msgid.link/") >= 8


def test_range_diff_between_two_revisions_of_the_series(v3_run, client):
    assert apply(Revision.objects.get(msgid=UFFD_V2), v3_run.tree).status == "applied"
    rd = client.get(f"/range-diff/{UFFD_V2}..{UFFD_V3}?tree=demo")
    assert rd.status_code == 200
    text = rd.context["text"]
    assert re.search(r"(?m)^-:\s+-+ > 2:\s+[0-9a-f]+ mm: provide can_userfault vma operation", text)
    form = client.get("/range-diff/", {"old": f"https://lore.kernel.org/r/{UFFD_V2}", "new": UFFD_V3, "tree": "demo"})
    assert form.status_code == 302 and form["Location"].startswith(f"/range-diff/{UFFD_V2}..{UFFD_V3}")


def test_permalinks_by_run_and_by_head_show_the_same_lines_and_survive_a_rerun(v3_run, client):
    path = "virt/kvm/guest_memfd.c"
    by_run = client.get(f"/tree/{v3_run.id}/{path}")
    again = apply(v3_run.root, v3_run.tree)
    assert again.id != v3_run.id and again.head == v3_run.head
    by_head = client.get(f"/tree/h/{v3_run.head}/{path}")
    short = client.get(f"/tree/h/{v3_run.head[:12]}/{path}")
    assert by_run.status_code == by_head.status_code == short.status_code == 200
    rows = lambda r: re.findall(r'<tr id="L(\d+)"><td class="b">(.*?)</td>', r.content.decode())
    assert rows(by_run) == rows(by_head) == rows(short) and len(rows(by_run)) > 100
    assert f"/tree/h/{v3_run.head}/{path}" in by_run.context["permalink"]
    assert client.get(f"/tree/{v3_run.id}/{path}").status_code == 200  # the old run id still works
    assert client.get(f"/tree/h/{'0' * 40}/{path}").status_code == 404



def test_range_diff_without_a_chain_applies_nothing_and_offers_maintainers_a_post(v3_run, client):
    from django.contrib.auth.models import Group, User

    from reviewapp.models import ApplyRun
    from reviewapp.permissions import MAINTAINERS
    url = f"/range-diff/{UFFD_V2}..{UFFD_V3}?tree=demo"
    rd = client.get(url)
    assert rd.status_code == 404 and "v2 has no applied chain on demo" in rd.content.decode()
    assert 'action="/apply/' not in rd.content.decode()
    assert ApplyRun.objects.count() == 1
    boss = User.objects.create_user("max", password="pw")
    boss.groups.add(Group.objects.get_or_create(name=MAINTAINERS)[0])
    client.force_login(boss)
    html = client.get(url).content.decode()
    assert f'action="/apply/{UFFD_V2}/"' in html and 'name="tree" value="demo"' in html
    assert ApplyRun.objects.count() == 1


def test_a_dependency_is_found_in_the_chains_that_carry_it_and_nothing_else_is(v3_run):
    v7, v2 = Revision.objects.get(msgid=MAPPING_V7), Revision.objects.get(msgid=UFFD_V2)
    assert [r.id for r in prov.runs_containing(v7)] == [v3_run.id]  # not its root: found in the chain
    assert prov.runs_containing(v2) == []
