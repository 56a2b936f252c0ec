"""Every URL pattern with malformed ids and query values: 400 (bad value) or 404 (no such
object), never a 5xx. Walks the URL patterns like test_reads_only.py."""
import pytest
from django.urls import get_resolver, reverse

# The same ids as the read-only walk: the demo's graph, applied chain, fetch and subscription.
from tests.integration.test_reads_only import _kwargs, _patterns, ids  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

HUGE = [str(2 ** 63), str(2 ** 64 + 7), "9" * 40]
BAD_INTS = HUGE + ["0", "007"]
BAD_TEXT = ["x" * 5000, "..%2F..%2Fetc%2Fpasswd", "%E2%80%AE", "a%20b", "<script>"]
# Every parameter a view reads, with values of each wrong kind (one request per value).
WRONG = ["abc", "-1", str(2 ** 63), "%FF"]
BAD_QUERY = {name: WRONG for name in ("page", "version", "state", "list", "tree", "changed", "combined",
                                      "raw", "old", "new", "q", "author", "limit", "offset", "cursor")}
BAD_QUERY["page"] = WRONG + ["0", "1.5", "9" * 40]
BAD_QUERY["since"] = ["2021-13-45", "2021-02-30", "99999-01-01", "2021-01-01T25:00"]
BAD_QUERY["until"] = ["yesterday", "0"]


def _urls(ids):
    """(pattern name, good url, [malformed urls]) for every named pattern."""
    for name, prefix, pattern in _patterns(get_resolver()):
        if name is None or prefix == "admin:":
            continue
        good = _kwargs(pattern, ids)
        url = reverse(name, kwargs=good)
        bad = []
        for key, value in good.items():
            conv = pattern.pattern.converters.get(key).__class__.__name__ if pattern.pattern.converters else ""
            for wrong in (BAD_INTS if conv == "IntConverter" else BAD_TEXT):
                bad.append(url.replace(str(value), wrong, 1))
        yield name, url, bad


@pytest.mark.slow
def test_every_url_with_malformed_ids_or_query_values_is_never_a_5xx(client, django_user_model, ids):
    staff = django_user_model.objects.create_user("mallory", password="pw-m-1", is_staff=True)
    seen, failures = 0, []
    urls = list(_urls(ids))
    for user in (None, staff):
        if user:
            client.force_login(user)
        for name, url, bad in urls:
            tried = list(bad)
            if user:  # the query values once, as the user who sees every panel
                tried += [f"{url}?{key}={v}" for key, values in BAD_QUERY.items() for v in values]
            for u in tried:
                status = client.get(u).status_code
                seen += 1
                if status >= 500:
                    failures.append((status, u))
    assert len(urls) > 35 and seen > 2000
    assert failures == []


@pytest.mark.parametrize("query", ["page=abc", "page=-1", "page=0", f"page={2 ** 63}", "page=1.5",
                                   "since=2021-13-45", "until=yesterday", "since=99999-01-01",
                                   "state=bogus", "version=abc", "version=-2", f"version={2 ** 63}"])
def test_the_series_list_answers_a_malformed_filter_with_a_400_naming_it(client, query):
    resp = client.get(f"/?{query}")
    assert resp.status_code == 400
    assert query.split("=")[0].encode() in resp.content


def test_the_series_list_still_takes_good_filters(client, demo):
    assert client.get("/?page=1&since=2025-01-01&until=2025-12-31&state=complete&version=3").status_code == 200
    assert client.get("/?page=&state=&since=").status_code == 200  # empty means no filter


@pytest.mark.parametrize("url", [f"/runs/{2 ** 63}/", f"/runs/{2 ** 64}.json", f"/suite-runs/{2 ** 63}/",
                                 f"/s/{'9' * 30}", f"/fetch/{2 ** 63}/", f"/tree/{2 ** 63}/",
                                 f"/digests/{2 ** 63}/edit/", f"/api/apply-runs/{2 ** 63}/"])
def test_an_id_past_a_database_integer_is_a_404_not_a_500(admin_client, url):
    assert admin_client.get(url).status_code == 404
