"""Expected reviewers against the kernel's own scripts/get_maintainer.pl on Debian's 6.1 tree
(scripts/make-kernel-tree): for single files (`-f FILE`) and, through ingest and the stored
review state, for every patch of a chain made on that tree (the script in patch mode)."""
from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest

from reviewapp.models import Revision, ReviewState
from reviewapp.services import ingest, review, trees
from untangle import maintainers as mt

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--no-git", "--no-git-fallback", "--no-rolestats"]
CHAIN_FILES = ["mm/userfaultfd.c", "fs/userfaultfd.c", "include/linux/userfaultfd_k.h",
               "tools/testing/selftests/vm/userfaultfd.c", "Documentation/admin-guide/mm/userfaultfd.rst"]
# Files whose sections are reached only by K: keywords, N: regexes or a .yaml's own list.
ODD_FILES = ["Documentation/devicetree/bindings/watchdog/brcm,bcm7038-wdt.yaml", "MAINTAINERS", "Makefile",
             "drivers/i2c/i2c-core-base.c", "arch/arm64/boot/dts/apple/t8103.dtsi"]

pytestmark = [pytest.mark.slow, pytest.mark.kernel_build]


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_DATE": "2025-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2025-01-01T00:00:00Z"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout


@pytest.fixture(scope="module")
def linux61(tmp_path_factory):
    bare = Path(subprocess.run([str(ROOT / "scripts" / "make-kernel-tree")], check=True, capture_output=True,
                               text=True).stdout.strip().splitlines()[-1])
    files = git(bare, "ls-tree", "-r", "--name-only", "HEAD").split("\n")
    sample = random.Random(61).sample([f for f in files if f], 60) + CHAIN_FILES + ODD_FILES
    top = tmp_path_factory.mktemp("k61")
    # Only what the script reads: MAINTAINERS, .mailmap, itself, the tree-top markers, the files.
    wanted = ["MAINTAINERS", ".mailmap", "scripts/get_maintainer.pl", "COPYING", "CREDITS", "Kbuild",
              "Makefile", "README", *sample]
    archive = subprocess.run(["git", "--git-dir", str(bare), "archive", "HEAD", *sorted(set(wanted))],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "x", "-C", str(top)], input=archive, check=True)
    for d in ("Documentation", "arch", "include", "drivers", "fs", "init", "ipc", "kernel", "lib", "scripts"):
        (top / d).mkdir(exist_ok=True)
    return {"bare": bare, "top": top, "sample": sample}


def script(top: Path, *args: str) -> list[str]:
    out = subprocess.run(["perl", "scripts/get_maintainer.pl", *ARGS, *args], cwd=top, capture_output=True,
                         check=True).stdout
    return [x for x in out.decode("utf-8", "replace").split("\n") if x]


def parsed(bare: Path) -> mt.Maintainers:
    text = git(bare, "show", "HEAD:MAINTAINERS")
    mailmap = mt.Mailmap(git(bare, "show", "HEAD:.mailmap"))
    return mt.Maintainers(text, mailmap, git(bare, "ls-tree", "-r", "-d", "--name-only", "HEAD").split())


def test_every_sampled_file_gets_the_people_and_lists_get_maintainer_pl_names(linux61):
    ours = parsed(linux61["bare"])
    differ = {}
    for path in linux61["sample"]:
        text = (linux61["top"] / path).read_text(errors="replace")
        got = [e.formatted() for e in ours.for_files([path], lambda p, t=text: t)]
        want = script(linux61["top"], "-f", path)
        if set(got) != set(want):
            differ[path] = (want, got)
    assert differ == {}
    uffd = [e for e in ours.for_files(["mm/userfaultfd.c"], lambda p: "") if e.role == mt.LIST]
    assert "linux-mm@kvack.org" in [e.email for e in uffd]


@pytest.fixture
def chain61(linux61, tmp_path, data_dir):
    """Two patches of our own on the 6.1 tree (mm/userfaultfd.c and its selftest, then fs/ and
    the header), sent as a threaded series, ingested, and the tree registered."""
    repo = tmp_path / "linux"
    subprocess.run(["git", "clone", "-q", "--shared", "--no-checkout", str(linux61["bare"]), str(repo)], check=True)
    git(repo, "config", "user.name", "Test Author")
    git(repo, "config", "user.email", "author@example.org")
    git(repo, "sparse-checkout", "set", "--no-cone", *CHAIN_FILES)
    git(repo, "checkout", "-q")
    for files, subject in ((CHAIN_FILES[0::3], "mm/userfaultfd: note the minor-fault path"),
                           (CHAIN_FILES[1:3], "userfaultfd: say why CONTINUE needs a page")):
        for f in files:
            with open(repo / f, "a") as out:
                out.write("/* reviewapp test: " + subject + " */\n")
        git(repo, "commit", "-qam", subject + "\n\nA comment only.\n\nSigned-off-by: Test Author <author@example.org>")
    out = tmp_path / "series"
    git(repo, "format-patch", "-q", "--thread", "--cover-letter", "-o", str(out), "HEAD~2")
    mails = [p.read_bytes() for p in sorted(out.glob("*.patch"))]
    ingest.ingest(mails, "linux-mm", workers=0)
    tree = trees.add_tree("linux-6.1", str(repo))
    return {"patches": sorted(out.glob("*.patch"))[1:], "tree": tree}


@pytest.mark.django_db
def test_each_patch_of_a_chain_expects_whom_get_maintainer_pl_names_for_that_patch(linux61, chain61):
    rev = Revision.objects.live().get()
    review.recompute([rev.id], chain61["tree"])
    state = ReviewState.objects.get(revision=rev)
    assert state.tree == "linux-6.1"
    for patch, stored in zip(chain61["patches"], state.data["patches"]):
        want = script(linux61["top"], str(patch))
        got = [mt.format_email(e["name"], e["email"]) if e["role"] != mt.LIST else e["email"]
               for e in stored["expected"]]
        assert set(got) == set(want), (patch.name, want, got)
        assert all(not e["spoken"] for e in stored["expected"])
    people = {e["email"] for p in state.data["patches"] for e in p["expected"] if e["role"] != mt.LIST}
    assert people and set(state.data["summary"]["waiting_on"]) == people
