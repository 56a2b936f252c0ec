"""Hosts that share only the database: a chain applied on one host is browsed, fetched over
git and checked out on another whose mirror never saw it (services/results.py). Here each
host is a DATA_DIR of its own in one process; test_two_hosts.py runs them as processes."""
import subprocess

import pytest

from reviewapp.models import ApplyRun, ChainBundle, Patch, Revision
from reviewapp.services import apply, provenance, results, trees
from untangle import gitrepo

UFFD_V3 = "20250404132740.18342-1-kalyazin@amazon.com"

pytestmark = pytest.mark.django_db


def _host(settings, tmp_path, name: str):
    settings.DATA_DIR = tmp_path / name
    settings.DATA_DIR.mkdir(exist_ok=True)
    return settings.DATA_DIR


def _applied(tree) -> ApplyRun:
    run = apply.apply(Revision.objects.get(msgid=UFFD_V3), tree)
    assert run.status == ApplyRun.APPLIED, run.error
    return run


def test_a_chain_applied_on_one_host_is_browsed_and_fetched_on_another_that_never_saw_it(
        demo, settings, tmp_path, client):
    run = _applied(demo)
    bundle = ChainBundle.objects.get(tree=demo, head=run.head)
    assert bundle.base == run.base and 0 < bundle.size == len(bytes(bundle.data))
    web = _host(settings, tmp_path, "web-host")
    assert not trees.mirror_of(demo).exists()
    touched = sorted(Patch.objects.get(message__msgid=run.applied[-1]["msgid"]).files.values_list("path", flat=True))
    page = client.get(f"/tree/{run.id}/{touched[0]}")
    assert page.status_code == 200
    stats = page.content.decode().split('id="stats"', 1)[1].split("</p>", 1)[0]
    assert "from KVM: guest_memfd: support for uffd minor v3" in stats
    mirror = web / "mirrors" / "demo.git"
    assert gitrepo.resolve(mirror, run.head) == run.head  # made here, the bundle taken in
    refs = client.get("/git/demo.git/info/refs", {"service": "git-upload-pack"})
    assert refs.status_code == 200 and run.ref.encode() in b"".join(refs.streaming_content)
    assert gitrepo.resolve(mirror, run.ref) == run.head
    again = _applied(demo)  # the same chain again, on this host: cached, nothing published twice
    assert again.head == run.head and ChainBundle.objects.filter(head=run.head).count() == 1


def test_a_host_behind_the_last_fetch_catches_up_before_taking_in_a_chain_on_the_new_base(
        settings, tmp_path, demo_source, client):
    from tests.support.demo import ingest_demo_mails
    upstream = tmp_path / "upstream"
    subprocess.run(["git", "clone", "-q", str(demo_source), str(upstream)], check=True)
    ingest_demo_mails()
    _host(settings, tmp_path, "web-host")
    tree = trees.add_tree("demo", str(upstream))  # the web host's mirror, at the old head
    old_head = gitrepo.resolve(trees.mirror_of(tree), "HEAD")
    (upstream / "NEWS").write_text("a newer upstream\n")
    git = ["git", "-C", str(upstream), "-c", "user.name=U", "-c", "user.email=u@example.org"]
    subprocess.run(git + ["add", "NEWS"], check=True)
    subprocess.run(git + ["commit", "-qm", "upstream moves"], check=True)
    _host(settings, tmp_path, "worker-host")
    tree = trees.fetch_tree(tree.id)  # a worker fetches: the row says so
    run = apply.apply(Revision.objects.get(msgid=UFFD_V3), tree, base="HEAD")
    assert run.status == ApplyRun.APPLIED and run.base != old_head, (run.status, run.error)
    web = _host(settings, tmp_path, "web-host")
    tree.refresh_from_db()
    assert results.local_mirror(run) == web / "mirrors" / "demo.git"
    assert gitrepo.resolve(web / "mirrors" / "demo.git", run.base) == run.base
    assert client.get(f"/tree/{run.id}/NEWS").status_code == 200


def test_a_chain_too_big_to_publish_says_so_on_the_other_host(demo, settings, tmp_path, client):
    settings.RESULT_MAX_BYTES = 1024
    run = _applied(demo)
    assert not ChainBundle.objects.exists()
    _host(settings, tmp_path, "web-host")
    assert client.get(f"/tree/{run.id}/").status_code == 404
    with pytest.raises(provenance.BrowseError, match="no host published them"):
        provenance.load_chain(run)
