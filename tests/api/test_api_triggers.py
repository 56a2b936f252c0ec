"""Every POST trigger as anonymous (401), reviewer (403) and maintainer (202), with the
same audit rows the web UI writes; tokens and sessions both authenticate."""

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from reviewapp.models import ApplyRun, AuditLog, FetchRequest, MailingList, Revision, SuiteRun, SyncRun, Tree
from reviewapp.services import apply as apply_service
from tests.support.demo import FASTPATH

pytestmark = pytest.mark.django_db


@pytest.fixture
def applied(demo) -> ApplyRun:
    run = apply_service.apply(Revision.objects.get(msgid=FASTPATH), demo)
    assert run.status == ApplyRun.APPLIED, run.error
    return run


def _triggers(applied: ApplyRun) -> dict:
    """name -> (audit action, path, body, the model whose rows a success adds)."""
    return {
        "apply": ("apply", "/api/apply-runs/", {"revision": FASTPATH, "tree": "demo"}, ApplyRun),
        "suite": ("suite", "/api/suite-runs/", {"apply_run": applied.id}, SuiteRun),
        "fetch": ("fetch", "/api/fetches/", {"ref": "<someone@example.org>"}, FetchRequest),
        "tree-fetch": ("tree-fetch", "/api/trees/demo/fetch", {}, None),
    }


TRIGGERS = ["apply", "suite", "fetch", "tree-fetch"]


@pytest.mark.parametrize("name", TRIGGERS)
def test_anonymous_trigger_is_401_json_and_audited(name, anonymous, applied):
    action, path, body, model = _triggers(applied)[name]
    before = model.objects.count() if model else None
    response = anonymous.post(path, body, format="json")
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json") and response.json()["detail"]
    assert AuditLog.objects.filter(user="anonymous", action=action, target=path, allowed=False).count() == 1
    if model:
        assert model.objects.count() == before


@pytest.mark.parametrize("name", TRIGGERS)
def test_reviewer_trigger_is_403_json_and_audited(name, reviewer, applied):
    action, path, body, model = _triggers(applied)[name]
    before = model.objects.count() if model else None
    response = reviewer.post(path, body, format="json")
    assert response.status_code == 403 and response.json()["detail"] == "maintainers only"
    assert AuditLog.objects.filter(user="rita", action=action, allowed=False).count() == 1
    if model:
        assert model.objects.count() == before
    assert Tree.objects.get(name="demo").state != "fetching"


@pytest.mark.parametrize("name", TRIGGERS)
def test_maintainer_trigger_is_accepted_and_audited(name, maintainer, applied):
    action, path, body, model = _triggers(applied)[name]
    before = model.objects.count() if model else None
    response = maintainer.post(path, body, format="json")
    assert response.status_code == 202, response.content
    assert AuditLog.objects.filter(user="max", action=action, target=path, allowed=True).count() == 1
    if model:
        assert model.objects.count() == before + 1
        assert model.objects.order_by("-id").first().id == response.json()["id"]
    else:
        assert response.json()["name"] == "demo"


def test_maintainer_apply_is_queued_for_the_worker_by_the_same_service(maintainer, demo):
    response = maintainer.post("/api/apply-runs/", {"revision": FASTPATH, "tree": "demo", "newest": True},
                               format="json")
    run = ApplyRun.objects.get(id=response.json()["id"])
    assert (run.status, run.newest, run.root.msgid, run.requested_by.username) == (
        ApplyRun.QUEUED, True, FASTPATH, "max")


def test_maintainer_bad_inputs_get_400_and_unknown_names_404_naming_the_field(maintainer, demo):
    cases = [("/api/apply-runs/", {"revision": "nobody@example.org", "tree": "demo"}, 404, "revision"),
             ("/api/apply-runs/", {"revision": FASTPATH, "tree": "nope"}, 404, "tree"),
             ("/api/apply-runs/", {"tree": "demo"}, 400, "revision"),
             ("/api/suite-runs/", {"apply_run": 999999}, 404, "apply_run"),
             ("/api/suite-runs/", {"apply_run": "one"}, 400, "apply_run"),
             ("/api/fetches/", {"ref": ""}, 400, "ref"),
             ("/api/fetches/", {"ref": "not a message id"}, 400, "ref")]
    for path, body, code, field in cases:
        response = maintainer.post(path, body, format="json")
        assert response.status_code == code, (path, body, response.content)
        assert field in response.json()
    assert not ApplyRun.objects.exists() and not FetchRequest.objects.exists()


def test_suite_on_a_run_that_did_not_apply_is_409(maintainer, demo):
    run = ApplyRun.objects.create(tree=demo, root=Revision.objects.get(msgid=FASTPATH), status=ApplyRun.CONFLICT)
    response = maintainer.post("/api/suite-runs/", {"apply_run": run.id}, format="json")
    assert response.status_code == 409 and response.json()["detail"]


def test_a_wrong_token_is_401(demo):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.post("/api/apply-runs/", {"revision": FASTPATH, "tree": "demo"}, format="json").status_code == 401


def test_browser_session_of_a_maintainer_triggers_with_a_csrf_token(demo):
    from django.contrib.auth.models import Group
    from reviewapp.permissions import MAINTAINERS
    user = User.objects.create_user("sam", password="pw")
    user.groups.add(Group.objects.get_or_create(name=MAINTAINERS)[0])
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="sam", password="pw")
    refused = client.post("/api/apply-runs/", {"revision": FASTPATH, "tree": "demo"}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    client.get("/api/auth/login/")
    token = client.cookies["csrftoken"].value
    response = client.post("/api/apply-runs/", {"revision": FASTPATH, "tree": "demo"}, format="json",
                           HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 202, response.content


def test_token_is_made_by_the_management_command(db, capsys):
    User.objects.create_user("tok")
    call_command("drf_create_token", "tok")
    key = Token.objects.get(user__username="tok").key
    assert key in capsys.readouterr().out


@pytest.fixture
def followed(db) -> MailingList:
    return MailingList.objects.create(name="linux-mm", url="http://127.0.0.1:9/linux-mm")


def test_sync_trigger_refuses_anonymous_and_reviewers_and_audits_them(anonymous, reviewer, followed):
    path = "/api/lists/linux-mm/sync"
    assert anonymous.post(path, {}, format="json").status_code == 401
    response = reviewer.post(path, {}, format="json")
    assert response.status_code == 403 and response.json()["detail"] == "maintainers only"
    assert AuditLog.objects.filter(action="sync", allowed=False).count() == 2
    assert not SyncRun.objects.exists()


def test_maintainer_sync_of_a_followed_list_is_queued_for_the_worker(maintainer, followed,
                                                                     django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = maintainer.post("/api/lists/linux-mm/sync", {}, format="json")
    assert response.status_code == 202, response.content
    assert response.json() == {"list": "linux-mm", "url": followed.url, "queued": True}
    assert len(callbacks) == 1  # the task goes to the worker once the request commits
    assert AuditLog.objects.filter(user="max", action="sync", allowed=True).count() == 1


def test_sync_of_a_list_not_followed_is_409_and_of_an_unknown_list_404(maintainer, db):
    MailingList.objects.create(name="kvm")
    assert maintainer.post("/api/lists/kvm/sync", {}, format="json").status_code == 409
    assert maintainer.post("/api/lists/nope/sync", {}, format="json").status_code == 404
