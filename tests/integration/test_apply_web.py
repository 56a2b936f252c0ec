"""Apply from the web: permissions, the worker path, the run page in a real
browser, and fetching the result with git over smart HTTP."""
import subprocess

import pytest
from django.contrib.auth.models import Group, User

from reviewapp.models import ApplyRun, AuditLog
from reviewapp.permissions import MAINTAINERS
from reviewapp.services import apply as service, trees
from tests.conftest import wait_for
from tests.integration.test_apply_chains import post_series, root, run_git
from tests.support.browser import screenshot
from tests.support.demo import FASTPATH
from untangle import gitrepo


def make_user(name: str, maintainer: bool) -> User:
    user = User.objects.create_user(name, password="pw")
    if maintainer:
        user.groups.add(Group.objects.get_or_create(name=MAINTAINERS)[0])
    return user


@pytest.mark.django_db
def test_reviewer_gets_403_and_the_attempt_is_audited(client, demo):
    client.force_login(make_user("rita", maintainer=False))
    resp = client.post(f"/apply/{FASTPATH}/", {"tree": "demo", "mode": "declared"})
    assert resp.status_code == 403
    row = AuditLog.objects.get()
    assert (row.user, row.action, row.allowed) == ("rita", "apply", False)
    assert FASTPATH in row.target
    assert not ApplyRun.objects.exists()


@pytest.mark.django_db
def test_series_page_offers_the_form_to_maintainers_only(client, demo):
    client.force_login(make_user("rita", maintainer=False))
    page = client.get(f"/series/{FASTPATH}/").content.decode()
    assert 'id="apply"' in page and 'id="apply-form"' not in page
    client.force_login(make_user("max", maintainer=True))
    page = client.get(f"/series/{FASTPATH}/").content.decode()
    assert 'id="apply-form"' in page and 'value="newest"' in page and '<option value="demo">' in page


@pytest.mark.django_db
def test_run_page_shows_base_rule_attempts_commits_and_fetch_command(client, demo):
    run = service.apply(root(FASTPATH), demo)
    page = client.get(f"/runs/{run.id}/").content.decode()
    assert "dependency" in page and run.base in page
    assert "rejected: not in tree demo" in page
    assert run.applied[-1]["commit"][:12] in page
    assert f'href="/tree/{run.id}/"' in page
    assert f"git fetch http://testserver/git/demo.git refs/reviewapp/chains/{run.id}" in page
    data = client.get(f"/runs/{run.id}.json").json()
    assert (data["status"], data["progress"], data["total"], data["finished"]) == ("applied", 10, 10, True)
    # The run shows up on the series page and on the trees page.
    assert f"/runs/{run.id}/" in client.get(f"/series/{FASTPATH}/").content.decode()
    assert "demo" in client.get("/trees/").content.decode()


@pytest.mark.django_db
def test_conflict_page_names_the_failed_patch_and_who_touched_the_lines(client, demo, demo_source, tmp_path):
    from reviewapp.services.ingest import ingest
    text = (demo_source / "README").read_text()
    first = text.splitlines()[0]
    ingest(post_series(demo_source, tmp_path / "w", "ser-a", "master",
                       [("README: retitle", {"README": text.replace(first, "A", 1)})], title="A"))
    ingest(post_series(demo_source, tmp_path / "w", "ser-b", "master",
                       [("README: other", {"README": text.replace(first, "B", 1)})], title="B",
                       depends_on="ser-a-0@example.org"))
    run = service.apply(root("ser-b-0@example.org"), demo)
    page = client.get(f"/runs/{run.id}/").content.decode()
    assert run.status == "conflict" and 'id="failure"' in page
    assert "ser-b-1@example.org" in page and "README" in page
    assert "README: retitle" in page  # the earlier patch that last touched the lines


@pytest.mark.django_db(transaction=True)
def test_maintainer_apply_runs_on_a_real_worker(client, celery_worker_proc, demo):
    client.force_login(make_user("max", maintainer=True))
    resp = client.post(f"/apply/{FASTPATH}/", {"tree": "demo", "mode": "declared", "base": ""})
    run = ApplyRun.objects.get()
    assert resp.status_code == 302 and resp["Location"] == f"/runs/{run.id}/"
    assert AuditLog.objects.get().allowed is True
    done = wait_for(lambda: ApplyRun.objects.filter(id=run.id, status__in=service.FINISHED).first(), timeout=60)
    assert done.status == "applied", (done.error, celery_worker_proc.log())
    assert (done.progress, done.total, done.base_rule) == (10, 10, "dependency")
    assert gitrepo.resolve(trees.mirror_of(done.tree), done.ref) == done.head


@pytest.mark.django_db(transaction=True)
def test_anyone_can_git_fetch_the_result_over_http_and_nobody_can_push(live_server, demo, tmp_path):
    tree = demo
    run = service.apply(root(FASTPATH), tree)
    clone = tmp_path / "client"
    run_git(tmp_path, "init", "-q", str(clone))
    url = f"{live_server.url}/git/demo.git"
    run_git(clone, "fetch", "-q", url, run.ref)
    assert run_git(clone, "rev-parse", "FETCH_HEAD").strip() == run.head
    assert run_git(clone, "rev-parse", "FETCH_HEAD^{tree}").strip() == run.tree_sha
    assert len(run_git(clone, "rev-list", f"{run.base}..FETCH_HEAD").split()) == 10
    # A clone of a branch works too, through the same endpoint.
    run_git(tmp_path, "clone", "-q", "--bare", url, str(tmp_path / "mirror-copy"))
    run_git(clone, "checkout", "-q", "-b", "work", "FETCH_HEAD")
    push = subprocess.run(["git", "push", url, "work:refs/heads/evil"], cwd=clone, capture_output=True, text=True)
    assert push.returncode != 0 and "403" in push.stderr
    assert gitrepo.resolve(trees.mirror_of(tree), "refs/heads/evil") is None
    assert subprocess.run(["git", "ls-remote", f"{live_server.url}/git/nosuch.git"], capture_output=True).returncode != 0


@pytest.mark.django_db(transaction=True)
def test_run_page_in_chromium_updates_live_and_shows_the_result(demo, page):
    queued = ApplyRun.objects.create(tree=demo, root=root(FASTPATH), status=ApplyRun.QUEUED)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{page.base}/runs/{queued.id}/")
    assert page.inner_text("#run-status") == "queued"
    # The worker's part, done here: the page must notice on its own (polling).
    assert service.claim(queued.id)
    service.execute(ApplyRun.objects.get(id=queued.id))
    page.wait_for_selector("#result", timeout=15000)
    assert page.inner_text("#run-status") == "applied"
    assert page.inner_text("#run-k") == "10" and page.inner_text("#base-rule") == "dependency"
    assert f"/git/demo.git refs/reviewapp/chains/{queued.id}" in page.inner_text("#fetch-command")
    assert page.get_attribute("#browse-link", "href") == f"/tree/{queued.id}/"
    shot = screenshot(page, "apply-run")
    page.goto(f"{page.base}/series/{FASTPATH}/")
    screenshot(page.locator("#apply"), "apply-panel", full_page=False)
    assert shot.stat().st_size > 10_000
