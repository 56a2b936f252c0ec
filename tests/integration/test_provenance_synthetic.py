"""Line provenance on synthetic chains: real git commits, mailed with `git format-patch`,
ingested, applied by the apply service, then traced back line by line.

Every line the test writes carries a marker naming who wrote it ("base", "A1",
"B2", ...), so the expected owner of each line at the head is read off the line
itself, independently of any diff.
"""
import re
import subprocess
from pathlib import Path

import pytest

from reviewapp.models import Patch, Revision
from reviewapp.services import apply as apply_service, provenance as prov, trees
from reviewapp.services.ingest import ingest
from untangle.mbox import messages_from_path

pytestmark = pytest.mark.django_db

ENV = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent",
       "GIT_AUTHOR_NAME": "Ann Dev", "GIT_AUTHOR_EMAIL": "ann@example.org",
       "GIT_COMMITTER_NAME": "Ann Dev", "GIT_COMMITTER_EMAIL": "ann@example.org", "PATH": "/usr/bin:/bin"}
MARK = re.compile(r"/\* by (\w+) \*/")


def git(repo: Path, *args: str, date: int = 1_700_000_000) -> str:
    env = dict(ENV, GIT_AUTHOR_DATE=f"@{date} +0000", GIT_COMMITTER_DATE=f"@{date} +0000")
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True,
                          text=True).stdout


def func(name: str, who: str, body: int = 3) -> list[str]:
    """A C function whose every line (braces, blanks too) names its writer."""
    return ([f"int {name}(void) /* by {who} */", f"{{ /* by {who} */"]
            + [f"\tstep_{name}_{i}(); /* by {who} */" for i in range(body)]
            + [f"\treturn 0; /* by {who} */", f"}} /* by {who} */", f"/* by {who} */"])


def write(repo: Path, path: str, lines: list[str]) -> None:
    f = repo / path
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text("".join(x + "\n" for x in lines))


def read(repo: Path, path: str) -> list[str]:
    return (repo / path).read_text().split("\n")[:-1]


def edit(repo: Path, path: str, who: str, *, replace: dict[str, str] = (), after: dict[str, list[str]] = ()):
    """Rewrite lines containing a key (marker -> who), insert new lines after a key."""
    out = []
    for line in read(repo, path):
        for key, new in dict(replace).items():
            if key in line:
                line = MARK.sub(f"/* by {who} */", line.replace(key, new))
        out.append(line)
        for key, extra in dict(after).items():
            if key in line:
                out.extend(extra)
    write(repo, path, out)


class Story:
    """A source repo, series made on top of each other, mailed and ingested."""

    def __init__(self, root: Path):
        self.root = root
        self.repo = root / "src"
        self.repo.mkdir()
        git(self.repo, "init", "-q", "-b", "master")
        self.tick = 1_700_000_000
        self.series: list[tuple[str, str]] = []  # (key, cover msgid)

    def commit(self, message: str) -> str:
        self.tick += 60
        git(self.repo, "add", "-A")
        git(self.repo, "commit", "-q", "-m", message, date=self.tick)
        return git(self.repo, "rev-parse", "HEAD").strip()

    def mail_series(self, key: str, title: str, start: str, depends_on: str | None) -> str:
        """format-patch start..HEAD with a cover letter; msgids made unique per series.

        Only the first series names its base-commit: for the others --base would add
        prerequisite-patch-ids, and git computes those without rename detection, so
        they name no posted patch (a separate matter from provenance)."""
        out = self.root / f"mail-{key}"
        base = [f"--base={self.base}"] if depends_on is None else []
        git(self.repo, "format-patch", "-q", "--cover-letter", "--thread", *base,
            "-o", str(out), f"{start}..HEAD", date=self.tick)
        mbox = self.root / f"{key}.mbox"
        text = "".join(p.read_text() for p in sorted(out.glob("*.patch")))
        text = re.sub(r"(?m)^((?:Message-ID|Message-Id|In-Reply-To|References): .*)$",
                      lambda m: re.sub(r"<([^>@]+)@", rf"<\1.{key}@", m.group(1)), text)
        blurb = f"Series {key}.\n\n" + (f"Depends-on: <{depends_on}>\n" if depends_on else "")
        text = text.replace("*** SUBJECT HERE ***", title).replace("*** BLURB HERE ***", blurb)
        mbox.write_text(text)
        ingest(messages_from_path(mbox))
        cover = re.search(r"(?m)^Message-I[dD]: <(cover[^>]+)>", text).group(1)
        self.series.append((key, cover))
        return cover

    def apply_last(self, data_dir) -> prov.Chain:
        tree = trees.add_tree("synthetic", str(self.repo), branches=["master"])
        root = Revision.objects.get(msgid=self.series[-1][1])
        run = apply_service.apply(root, tree)
        assert run.status == "applied", run.error
        assert run.chain == [c for _, c in self.series]
        return prov.load_chain(run)

    def who_to_msgid(self) -> dict[str, str | None]:
        """Marker ("A1") -> patch msgid; "base" -> None."""
        out: dict[str, str | None] = {"base": None}
        for key, cover in self.series:
            for p in Patch.objects.filter(revision__msgid=cover).select_related("message"):
                out[f"{key}{p.number}"] = p.message.msgid
        return out


def expected_owners(chain: prov.Chain, path: str, who: dict) -> list[str | None]:
    from untangle import gitrepo
    lines = gitrepo.read_file(chain.repo, chain.head, path).decode().split("\n")[:-1]
    return [who[MARK.search(x).group(1)] for x in lines]


def owners(chain: prov.Chain, path: str) -> list[str | None]:
    return [o.msgid if o else None for o in prov.line_owners(chain, path)]


@pytest.fixture
def story(tmp_path, data_dir):
    """Three series, each built on the previous one:

    A: 1 adds to lib/three.c and edits old/name.c; 2 deletes gone.c
    B: 1 renames old/name.c to new/name.c (no content change); 2 edits it and lib/three.c
    C: 1 re-adds gone.c (half of it as it was in the base); 2 edits lib/three.c again
    """
    s = Story(tmp_path)
    r = s.repo
    write(r, "lib/three.c", func("alpha", "base") + func("beta", "base") + func("gamma", "base"))
    write(r, "old/name.c", func("named", "base", body=6))
    gone = func("gone_one", "base") + func("gone_two", "base")
    write(r, "gone.c", gone)
    write(r, "README", ["readme /* by base */"])
    s.base = s.commit("base")

    edit(r, "lib/three.c", "A1", after={"return 0; /* by base */": func("from_a", "A1", body=2)})
    edit(r, "old/name.c", "A1", replace={"step_named_2();": "step_named_2(a);"})
    s.commit("lib: add from_a, tweak named\n\nSigned-off-by: Ann Dev <ann@example.org>")
    (r / "gone.c").unlink()
    s.commit("drop gone.c\n\nSigned-off-by: Ann Dev <ann@example.org>")
    a = s.mail_series("A", "lib: the A work", s.base, None)

    start = git(r, "rev-parse", "HEAD").strip()
    (r / "new").mkdir()
    git(r, "mv", "old/name.c", "new/name.c")
    s.commit("move name.c\n\nSigned-off-by: Ann Dev <ann@example.org>")
    edit(r, "new/name.c", "B2", replace={"step_named_4();": "step_named_4(b);"})
    edit(r, "lib/three.c", "B2", replace={"step_from_a_1();": "step_from_a_1(b);"},
         after={"step_beta_0(); /* by base */": ["\tbeta_extra(); /* by B2 */"]})
    s.commit("B edits\n\nSigned-off-by: Ann Dev <ann@example.org>")
    b = s.mail_series("B", "lib: the B work", start, a)

    start = git(r, "rev-parse", "HEAD").strip()
    write(r, "gone.c", func("gone_one", "C1") + func("gone_three", "C1"))
    s.commit("bring gone.c back\n\nSigned-off-by: Ann Dev <ann@example.org>")
    edit(r, "lib/three.c", "C2", replace={"step_gamma_1();": "step_gamma_1(c);",
                                          "beta_extra();": "beta_extra(c);",
                                          "step_from_a_0();": "step_from_a_0(c);"})
    s.commit("C edits\n\nSigned-off-by: Ann Dev <ann@example.org>")
    s.mail_series("C", "lib: the C work", start, b)
    s.gone_base_text = "".join(x + "\n" for x in gone)
    return s


def test_file_touched_by_three_series_names_each_series_line_by_line(story, data_dir):
    chain = story.apply_last(data_dir)
    who = story.who_to_msgid()
    got = owners(chain, "lib/three.c")
    assert got == expected_owners(chain, "lib/three.c", who)
    series = {o.revision.msgid if o else None for o in prov.line_owners(chain, "lib/three.c")}
    assert series == {None} | {c for _, c in story.series}


def test_renamed_file_keeps_the_owners_its_lines_had_before_the_rename(story, data_dir):
    chain = story.apply_last(data_dir)
    who = story.who_to_msgid()
    got = owners(chain, "new/name.c")
    assert got == expected_owners(chain, "new/name.c", who)
    assert who["B1"] not in got  # the rename itself wrote no line
    assert {who["A1"], who["B2"], None} <= set(got)


def test_file_deleted_and_readded_counts_every_line_from_the_readding_patch(story, data_dir):
    chain = story.apply_last(data_dir)
    who = story.who_to_msgid()
    head_text = prov.read_text(chain, "gone.c")[0]
    # Half the re-added file is byte-identical to the base's lines, markers aside.
    assert MARK.sub("", head_text).split("\n")[:7] == MARK.sub("", story.gone_base_text).split("\n")[:7]
    assert set(owners(chain, "gone.c")) == {who["C1"]}


def test_listing_marks_what_the_chain_changes_and_the_toggle_hides_the_rest(story, data_dir, client):
    chain = story.apply_last(data_dir)
    # Which patch touched which file (read from the stored mails) is what git says.
    from untangle import gitrepo
    by_git = {}
    for p in chain.patches:
        for f in gitrepo.changed_files(chain.repo, p.parent, p.commit):
            by_git.setdefault(f, []).append(p.msgid)
    assert {f: [p.msgid for p in ps] for f, ps in prov.touched_paths(chain).items()} == by_git
    root = {e["name"]: e for e in prov.listing(chain, "")}
    # old/ went away with the rename; gone.c is back with other content; README untouched.
    assert set(root) == {"README", "gone.c", "lib", "new"}
    assert {n for n, e in root.items() if e["changed"]} == {"gone.c", "lib", "new"}
    only = client.get(f"/tree/{chain.run.id}/?changed=1")
    names = re.findall(r'<td class="name mono"><a href="[^"]+">([^<]+)</a>', only.content.decode())
    assert names == ["lib/", "new/", "gone.c"]
    full = client.get(f"/tree/{chain.run.id}/")
    assert "README" in full.content.decode()
    colours = {r.msgid: r.css for r in chain.revisions}
    lib_row = re.search(r'<a href="[^"]+">lib/</a>.*?</tr>', full.content.decode(), re.S).group(0)
    assert all(colours[c] in lib_row for _, c in story.series)


def test_file_page_bands_link_each_line_to_its_patch_on_the_series_page(story, data_dir, client):
    chain = story.apply_last(data_dir)
    page = client.get(f"/tree/{chain.run.id}/lib/three.c").content.decode()
    rows = re.findall(r'<tr id="L(\d+)"><td class="b">(.*?)</td>', page)
    patches = {o.msgid: o for o in chain.patches}
    for (n, band), want in zip(rows, owners(chain, "lib/three.c")):
        if want is None:
            assert 'class="band base"' in band
        else:
            p = patches[want]
            assert f'href="/series/{p.revision.msgid}/#patch-{p.number}"' in band, n
            assert p.revision.css in band
    assert len(rows) == len(owners(chain, "lib/three.c"))
