"""GET only reads: every URL of the app, fetched anonymously on the demo data (a graph, an
applied chain, a fetch request, a subscription), leaves every table but sessions as it was."""
import json

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from reviewapp.models import AuditLog, FetchRequest, InflightConflict, MailingList, Revision, Subscription
from reviewapp.services import digests, review
from reviewapp.services.apply import apply
from reviewapp.services.graph import graph_for
from tests.support.demo import MAPPING_V8, UFFD_V2, UFFD_V3

pytestmark = pytest.mark.django_db


def _patterns(resolver, prefix=""):
    """(name with namespace, pattern) of every named URL pattern, nested includes too."""
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            ns = f"{p.namespace}:" if p.namespace else ""
            yield from _patterns(p, prefix + ns)
        elif isinstance(p, URLPattern):
            yield (prefix + p.name if p.name else None), prefix, p


def _kwargs(pattern, ids) -> dict:
    keys = list(pattern.pattern.converters) or list(pattern.pattern.regex.groupindex)
    return {k: ids[k] for k in keys}


@pytest.fixture
def ids(demo):
    uffd = Revision.objects.get(msgid=UFFD_V3)
    graph_for(uffd)
    run = apply(uffd, demo)
    assert run.status == "applied", run.error
    review.recompute(list(Revision.objects.values_list("id", flat=True)))
    sub = Subscription.objects.create(address="rev@example.org", name="r")
    req = FetchRequest.objects.create(ref="x@example.org", msgid="x@example.org")
    other = Revision.objects.exclude(id=uffd.id).first()
    conflict = InflightConflict.objects.create(
        mailing_list=uffd.mailing_list or MailingList.objects.create(name="kvm"), a=uffd, b=other,
        ancestor=run.base, files=[{"path": "mm/userfaultfd.c", "kind": "content", "hunk_count": 1,
                                   "hunks": [{"ours": ["a"], "theirs": ["b"], "truncated": False}]}],
        file_count=1, hunk_count=1)
    return {"msgid": UFFD_V3, "rev_id": uffd.id, "run_id": run.id, "apply_run_id": run.id,
            "sha": run.head, "path": "mm/userfaultfd.c", "spec": f"{UFFD_V2}..{UFFD_V3}",
            "request_id": req.id, "conflict_id": conflict.id, "sub_id": sub.id, "token": digests.unsubscribe_token(sub),
            "name": "demo", "rest": "info/refs", "app_label": "reviewapp", "model_name": "revision",
            "object_id": str(uffd.id), "id": str(uffd.id), "content_type_id": "1", "url": "reviewapp/revision/"}


def _state() -> dict:
    """Every row of every table but sessions."""
    return {m._meta.label: json.dumps(list(m.objects.order_by("pk").values()), default=str)
            for m in apps.get_models() if m is not Session}


def test_every_url_fetched_anonymously_with_get_changes_no_row(client, ids):
    urls = []
    for name, prefix, pattern in _patterns(get_resolver()):
        if name is None:  # only the admin's catch-all is unnamed
            assert prefix == "admin:", f"unnamed URL pattern {pattern}"
            urls.append("/admin/reviewapp/no-such-model/")
            continue
        urls.append(reverse(name, kwargs=_kwargs(pattern, ids)))
    urls += ["/search?q=never-stored@example.org", "/search?q=",
             f"/range-diff/{UFFD_V3}..{MAPPING_V8}?tree=demo",  # v8 has no chain: nothing applies
             f"/graph/{MAPPING_V8}/", f"/series/{MAPPING_V8}/",  # no graph stored for v8
             "/review/?reviewer=liam.howlett@oracle.com&path=mm/&list=kvm", "/review/?reviewer=x@y.org&new=1"]
    before = _state()
    statuses = {}
    for url in urls:
        response = client.get(url)
        statuses[url] = response.status_code
        assert response.status_code < 500, url
    after = _state()
    changed = [label for label in before if before[label] != after[label]]
    assert changed == [], f"GET changed {changed}; statuses {statuses}"
    assert len(urls) > 30
    for shown in (reverse("series-list"), reverse("graph-detail", args=[UFFD_V3]),
                  reverse("series-detail", args=[MAPPING_V8]), reverse("browse-path", args=[ids["run_id"], ids["path"]])):
        assert statuses[shown] == 200, shown
    assert not AuditLog.objects.exists()
