"""Property-based run of every operation in /api/schema/ (schemathesis, in-process WSGI):
no 5xx, every response valid against the schema, for anonymous callers and maintainers."""
import os
import re

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings as hsettings

from reviewapp.models import ApplyRun, Revision
from reviewapp.models import FetchRequest
from reviewapp.services import apply as apply_service, review, suites
from reviewapp.services.graph import graph_for
from tests.support.demo import FASTPATH

pytestmark = pytest.mark.django_db
EXAMPLES = int(os.environ.get("API_SCHEMA_EXAMPLES", "15"))


def _operations():
    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    ops = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in ops} == _routed_paths()
    return ops


def _routed_paths() -> set[str]:
    """Every /api/ route but the schema, its docs page and the browsable login, as schema paths."""
    from reviewapp.api.urls import urlpatterns
    out = set()
    for pattern in urlpatterns:
        route = "/" + str(pattern.pattern)
        if route.startswith(("/api/schema", "/api/docs", "/api/auth")):
            continue
        out.add(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route))
    return out


def _excluded(op) -> list:
    # A ref is a msgid or a lore URL: a grammar the schema cannot state, so a
    # schema-valid string may rightly be refused (400 naming the field).
    if op.method.upper() == "POST" and op.path == "/api/fetches/":
        return [schemathesis.checks.positive_data_acceptance]
    return []


def _run(op, headers: dict) -> None:
    # Fixed inputs in CI, as tests/fuzz: REVIEWAPP_FUZZ_RANDOM=1 explores fresh seeds.
    @hsettings(max_examples=EXAMPLES, deadline=None, database=None,
               derandomize=os.environ.get("REVIEWAPP_FUZZ_RANDOM") != "1",
               suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy())
    def check(case):
        case.call_and_validate(headers=headers, excluded_checks=_excluded(op))
    check()


@pytest.fixture(autouse=True)
def keep_test_connection():
    """The WSGI handler closes the DB connection after each request; the test's transaction
    lives on it (django.test.Client disconnects the same receiver)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def stored(demo) -> ApplyRun:
    """Rows for the real-value pass: an applied chain, a stored graph and review state."""
    graph_for(Revision.objects.get(msgid=FASTPATH))
    review.recompute([Revision.objects.get(msgid=FASTPATH).id])
    run = apply_service.apply(Revision.objects.get(msgid=FASTPATH), demo)
    assert run.status == ApplyRun.APPLIED
    suites.request_run(run, suites.ensure_default_suite(), force=True)  # queued: no worker here
    # A list named for the demo tree, holding the demo's series: its in-flight state is computed.
    from reviewapp.models import MailingList
    from reviewapp.services import inflight
    demo_list, _ = MailingList.objects.get_or_create(name="demo")
    Revision.objects.update(mailing_list=demo_list)
    inflight.compute("demo", days=36500)
    return run


def _token(client) -> dict:
    return {"Authorization": client._credentials["HTTP_AUTHORIZATION"]}


def test_every_operation_generated_as_anonymous_and_as_maintainer(stored, maintainer):
    ops = _operations()
    for op in ops:
        _run(op, {})
        _run(op, _token(maintainer))


def test_every_get_with_real_ids_answers_200_valid_against_the_schema(stored, maintainer):
    fetch = FetchRequest.objects.create(ref=FASTPATH, msgid=FASTPATH)
    suite_run = stored.suite_runs.get()
    values = {"msgid": FASTPATH, "run_id": stored.id, "name": "demo", "request_id": fetch.id}
    checked = []
    for op in _operations():
        if op.method.upper() != "GET":
            continue
        params = {k: values[k] for k in values if "{" + k + "}" in op.path}
        if op.path.startswith("/api/suite-runs/"):
            params["run_id"] = suite_run.id
        response = op.Case(path_parameters=params).call_and_validate(headers=_token(maintainer))
        assert response.status_code == 200, (op.path, response.text[:300])
        checked.append(op.path)
    assert {"/api/revisions/{msgid}/graph", "/api/chains/{run_id}/mbox", "/api/revisions/{msgid}/mbox",
            "/api/revisions/{msgid}/review"} <= set(checked)
