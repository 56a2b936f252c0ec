"""Registering trees: local path, bundle and URL sources, listing, fetching, errors."""
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from reviewapp.models import Tree
from reviewapp.services import trees
from tests.conftest import wait_for
from tests.integration.test_apply_chains import run_git
from untangle import gitrepo

pytestmark = pytest.mark.django_db
MASTER = "fa9042666118227a788cc3d3f159375d69cbe843"


def tree_cmd(*args) -> dict:
    out = StringIO()
    call_command("tree", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_tree_add_from_a_local_path_builds_a_bare_mirror_with_every_branch_and_tag(data_dir, demo_source):
    data = tree_cmd("add", "demo", str(demo_source))
    mirror = Path(data["mirror"])
    assert mirror == data_dir / "mirrors" / "demo.git" and (mirror / "HEAD").is_file()
    assert not (mirror / ".git").exists()  # bare
    assert (data["state"], data["default_branch"], data["head"]) == ("ready", "master", MASTER)
    assert gitrepo.resolve(mirror, "v6.14-rc7") == "db7aff2c120addec29ffe21f26c7b11e317e8e35"
    assert gitrepo.resolve(mirror, "next") is not None
    assert Tree.objects.get(name="demo").source == str(demo_source.resolve())


def test_tree_add_with_branches_mirrors_only_those(data_dir, demo_source):
    data = tree_cmd("add", "mainline", str(demo_source), "--branch", "master")
    mirror = Path(data["mirror"])
    assert gitrepo.resolve(mirror, "master") == MASTER
    assert gitrepo.resolve(mirror, "refs/heads/next") is None
    assert data["branches"] == ["master"]


def test_tree_add_from_a_bundle_file(data_dir, demo_source, tmp_path):
    bundle = tmp_path / "linux.bundle"
    run_git(demo_source, "bundle", "create", str(bundle), "--all")
    data = tree_cmd("add", "bundled", str(bundle))
    assert data["state"] == "ready" and data["head"] == MASTER


def test_tree_fetch_picks_up_new_commits_and_list_shows_them(data_dir, demo_source, tmp_path):
    src = tmp_path / "src"
    run_git(tmp_path, "clone", "-q", str(demo_source), str(src))
    tree_cmd("add", "moving", str(src))
    (src / "NEW").write_text("new\n")
    run_git(src, "add", "NEW")
    run_git(src, "commit", "-q", "-m", "new file")
    new_head = run_git(src, "rev-parse", "HEAD").strip()
    assert tree_cmd("fetch", "moving")["head"] == new_head
    listed = tree_cmd("list")["trees"]
    assert [t["name"] for t in listed] == ["moving"] and listed[0]["head"] == new_head


def test_a_source_git_cannot_read_is_an_error_recorded_on_the_tree(data_dir, tmp_path):
    with pytest.raises(CommandError) as err:
        call_command("tree", "add", "broken", str(tmp_path / "nope.git") + "-missing", stdout=StringIO())
    assert err.value.returncode == 1 and "broken" in str(err.value)
    tree = Tree.objects.get(name="broken")
    assert tree.state == "error" and tree.error
    assert not (data_dir / "mirrors" / "broken.git").exists()


def test_a_bad_tree_name_is_refused(data_dir, demo_source):
    with pytest.raises(CommandError, match="invalid tree name"):
        call_command("tree", "add", "../evil", str(demo_source), stdout=StringIO())
    assert not Tree.objects.exists()


def test_fetching_an_unknown_tree_names_the_known_ones(data_dir, demo_source):
    tree_cmd("add", "demo", str(demo_source), "--no-fetch")
    with pytest.raises(CommandError, match=r"no tree named 'x' \(known: demo\)"):
        call_command("tree", "fetch", "x", stdout=StringIO())


@pytest.mark.django_db(transaction=True)
def test_fetch_tree_task_builds_the_mirror_on_a_real_worker(data_dir, demo_source, celery_worker_proc):
    tree = trees.register_tree("demo", str(demo_source))
    assert trees.request_fetch(tree)  # outside a transaction: sent at once
    assert not trees.request_fetch(tree)  # one fetch at a time
    done = wait_for(lambda: Tree.objects.filter(id=tree.id, state__in=["ready", "error"]).first(), timeout=60)
    assert done.state == "ready", done.error + celery_worker_proc.log()
    assert gitrepo.resolve(trees.mirror_of(done), "master") == MASTER
