"""The graph page and the series-page panel: served HTML, then headless Chromium."""
import re

import pytest
from django.urls import reverse

from reviewapp.models import GraphSnapshot
from tests.support.browser import screenshot
from tests.support.demo import MAPPING_V7 as MAP7, MAPPING_V8 as MAP8, UFFD_V3 as UFFD3
from tests.support.demo import ingest_demo_mails_and_graphs as load_demo


@pytest.mark.django_db
def test_graph_page_answers_what_uffd_v3_needs_in_one_page(client):
    load_demo()
    html = client.get(reverse("graph-detail", args=[UFFD3])).content.decode()
    answer = html[html.index('id="answer"'):html.index('id="order"')]
    assert "needs" in answer and "Mapping guest_memfd backed memory" in answer and "v7" in answer
    assert "not the newest: v8 was posted 2025-04-18" in answer
    assert "restricted mapping v2 is not needed" in answer
    svg = html[html.index("<svg id=\"graph-svg\""):html.index("</svg>", html.index("<svg id=\"graph-svg\""))]
    assert f'data-msgid="{UFFD3}"' in svg and f'data-msgid="{MAP8}"' in svg
    assert 'class="node state-superseded" data-msgid="%s"' % MAP7 in svg
    assert svg.count('class="edge kind-depends-on') >= 2
    assert 'href="%s"' % reverse("series-detail", args=[MAP7]) in svg
    assert "Evidence (" in html and "built on top of the Fuad&#x27;s v7" in html


@pytest.mark.django_db
def test_patch_msgid_in_the_url_redirects_to_the_revision_graph(client):
    load_demo()
    resp = client.get(reverse("graph-detail", args=[UFFD3.replace("-1-", "-3-")]))
    assert resp.status_code == 302 and resp.url == reverse("graph-detail", args=[UFFD3])
    assert client.get(reverse("graph-detail", args=["nope-1@example.org"])).status_code == 404


@pytest.mark.django_db
def test_series_page_panel_summarises_needs_and_links_the_graph(client):
    load_demo()
    html = client.get(reverse("series-detail", args=[UFFD3])).content.decode()
    panel = html[html.index('id="graph-panel"'):]
    panel = panel[:panel.index("</section>")]
    assert re.search(r"needs: <a [^>]*>KVM: Mapping guest_memfd[^<]*v7</a> <span class=\"badge superseded\">v8 exists",
                     panel)
    assert reverse("graph-detail", args=[UFFD3]) in panel


@pytest.mark.django_db
def test_fetching_from_the_page_is_for_maintainers_only(client, django_user_model):
    load_demo()
    url = reverse("graph-fetch", args=[UFFD3])
    assert client.post(url).status_code == 403
    client.force_login(django_user_model.objects.create_user("reader", password="x"))
    assert client.post(url).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_graph_page_in_headless_chromium(page):
    load_demo()
    page.set_viewport_size({"width": 1600, "height": 1100})
    page.goto(page.base + reverse("graph-detail", args=[UFFD3]))
    nodes = page.locator("svg#graph-svg g.node")
    assert nodes.count() >= 8
    assert page.locator(f'g.node.root[data-msgid="{UFFD3}"]').count() == 1
    box = page.locator(f'g.node[data-msgid="{MAP7}"] rect').bounding_box()
    root_box = page.locator(f'g.node[data-msgid="{UFFD3}"] rect').bounding_box()
    assert box["x"] < root_box["x"], "a dependency is drawn left of what needs it"
    fill = page.locator(f'g.node[data-msgid="{MAP7}"] rect').evaluate("r => getComputedStyle(r).fill")
    assert fill == "rgb(239, 232, 247)"  # superseded
    dash = page.locator("path.edge.kind-previous-revision").first.get_attribute("stroke-dasharray")
    assert dash
    # Hovering an edge highlights its evidence in the side panel.
    edge = page.locator("path.edge.kind-depends-on.how-prose").first
    edge_id = edge.get_attribute("data-edge")
    edge.dispatch_event("mouseenter")  # a curve's box centre is rarely on its stroke
    page.wait_for_selector(f"#{edge_id}.hi")
    assert "built on top of" in page.locator(f"#{edge_id}").inner_text()
    screenshot(page, "graph-uffd-minor-v3")
    # A click on a node opens its series page.
    page.locator(f'g.node[data-msgid="{MAP7}"] a').click()
    page.wait_for_url(re.compile(re.escape(reverse("series-detail", args=[MAP7]))))
    assert page.locator("#graph-panel").count() == 1
    assert GraphSnapshot.objects.filter(root__msgid=UFFD3).exists()


@pytest.mark.django_db
def test_graph_page_without_a_stored_graph_says_so_and_computes_nothing(client):
    from tests.support.demo import ingest_demo_mails
    ingest_demo_mails()
    html = client.get(reverse("graph-detail", args=[UFFD3])).content.decode()
    assert "No dependency graph is stored yet" in html and 'id="graph-svg"' not in html
    panel = client.get(reverse("series-detail", args=[UFFD3])).content.decode()
    assert "No dependency graph stored yet" in panel
    assert not GraphSnapshot.objects.exists()


@pytest.mark.django_db
def test_graph_page_shows_its_time_and_says_when_new_mail_waits_for_a_recompute(client):
    from reviewapp.models import Message, Revision
    load_demo()
    html = client.get(reverse("graph-detail", args=[UFFD3])).content.decode()
    snap = GraphSnapshot.objects.filter(root__msgid=UFFD3).latest("computed")
    assert f"computed {snap.computed:%Y-%m-%d %H:%M:%S}" in html and "being recomputed" not in html
    reply = Message.objects.filter(revision=Revision.objects.get(msgid=MAP8)).first()
    Message.objects.filter(id=reply.id).update(received=snap.computed + __import__("datetime").timedelta(seconds=1))
    assert "being recomputed" in client.get(reverse("graph-detail", args=[UFFD3])).content.decode()
