"""The series list, a series page and the search box, in headless Chromium."""
import pytest

from reviewapp.models import FetchRequest
from tests.support.browser import screenshot

pytestmark = pytest.mark.django_db(transaction=True)

UFFD_V3 = "20250404132740.18342-1-kalyazin@amazon.com"


def test_series_list_shows_newest_first_with_counts(demo, page):
    page.goto(page.base + "/")
    rows = page.locator("#series tbody tr")
    assert rows.count() == 10
    first = rows.nth(0).inner_text()
    assert "restricted mapping" not in first  # the newest posting leads
    text = page.locator("#series").inner_text()
    assert "support for uffd minor" in text and "4/4" in text
    screenshot(page, "series-list")


@pytest.fixture
def demo_graphs(demo):
    """The demo with its graphs stored, as the worker leaves it (before `page`: no ORM then)."""
    from tests.support.demo import compute_demo_graphs
    compute_demo_graphs()
    return demo


def test_series_page_links_revisions_and_shows_patches(demo_graphs, page):
    page.goto(page.base + f"/series/{UFFD_V3}/")
    assert "v3" in page.locator("h1").inner_text()
    revisions = page.locator("#revisions").inner_text()
    assert "v1" in revisions and "v2" in revisions and "support for uffd missing" in revisions
    patches = page.locator("#patches").inner_text()
    assert "virt/kvm/guest_memfd.c" in patches and "Reviewed-by" in patches
    page.locator("#revisions a", has_text="v2").first.click()
    page.wait_for_url("**/series/*/")
    assert "v2" in page.locator("h1").inner_text()
    assert "graph computed" in page.locator("#graph-panel").inner_text()
    screenshot(page, "series-page")


def test_search_box_opens_a_known_series_from_a_lore_url(demo, page):
    page.goto(page.base + "/")
    page.fill("input[name=q]", f"https://lore.kernel.org/kvm/{UFFD_V3}/T/#u")
    page.press("input[name=q]", "Enter")
    page.wait_for_url(f"**/series/{UFFD_V3}/")
    assert FetchRequest.objects.count() == 0


def test_search_box_says_an_unknown_msgid_is_not_stored_and_fetches_nothing(data_dir, page):
    page.goto(page.base + "/")
    page.fill("input[name=q]", "<never-seen-42@example.org>")
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**/search?q=*")
    assert "never-seen-42@example.org" in page.locator("h1").inner_text()
    assert "is not stored" in page.locator("h1").inner_text()
    assert page.locator("#fetch-form").count() == 0
    assert not FetchRequest.objects.exists()


def test_a_maintainer_fetches_an_unknown_msgid_once_while_it_is_pending(data_dir, client):
    from django.contrib.auth.models import Group, User

    from reviewapp.permissions import MAINTAINERS
    assert client.post("/search/fetch", {"q": "<never-seen-43@example.org>"}).status_code == 403
    boss = User.objects.create_user("max", password="pw")
    boss.groups.add(Group.objects.get_or_create(name=MAINTAINERS)[0])
    client.force_login(boss)
    assert 'id="fetch-form"' in client.get("/search", {"q": "never-seen-43@example.org"}).content.decode()
    first = client.post("/search/fetch", {"q": "<never-seen-43@example.org>"})
    again = client.post("/search/fetch", {"q": "https://lore.kernel.org/all/never-seen-43@example.org/"})
    req = FetchRequest.objects.get()
    assert req.msgid == "never-seen-43@example.org"
    assert first["Location"] == again["Location"] == f"/fetch/{req.id}/"
    assert 'id="fetch-pending"' in client.get("/search", {"q": "never-seen-43@example.org"}).content.decode()
