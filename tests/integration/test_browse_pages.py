"""The reviewer's walk in headless Chromium, on the demo: from the uffd minor v3 series
page to the consolidated tree, guest_memfd.c line by line, what v3 itself adds on top of
mapping v7, and what changed in mapping v8. Screenshots go to test-artifacts/screenshots/.
"""
import re

import pytest

from reviewapp.models import Revision
from reviewapp.services import provenance as prov
from reviewapp.services.apply import apply
from tests.support.browser import screenshot
from tests.support.demo import MAPPING_V8, UFFD_V3

FILE = "virt/kvm/guest_memfd.c"


@pytest.fixture
def chain(demo):
    # Requested before `page`: the ORM work is done before the browser starts.
    # the range-diff page shows chains that exist: the newest-dependency chain is applied too
    assert apply(Revision.objects.get(msgid=UFFD_V3), demo, newest=True).status == "applied"
    run = apply(Revision.objects.get(msgid=UFFD_V3), demo)
    assert run.status == "applied", run.error
    c = prov.load_chain(run)
    owners = prov.line_owners(c, FILE)  # computed now: no ORM once the browser runs
    return c, owners


def shot(pg, name: str, full_page: bool = False) -> None:
    screenshot(pg, f"browse-{name}", full_page)


def rgb(hex_colour: str) -> str:
    h = hex_colour.lstrip("#")
    return "rgb({}, {}, {})".format(*(int(h[i:i + 2], 16) for i in (0, 2, 4)))


@pytest.mark.django_db(transaction=True)
def test_reviewer_walks_from_the_series_page_to_each_lines_patch(chain, page, live_server):
    c, owners = chain
    pg = page
    pg.goto(f"{live_server.url}/series/{UFFD_V3}/")
    panel = pg.locator("#browse")
    assert "What this series itself changes" in panel.inner_text()
    screenshot(panel, "browse-series-panel", full_page=False)

    pg.click("#browse-tree-link")
    assert pg.url == f"{live_server.url}/tree/{c.run.id}/"
    assert pg.locator("#changed-files").inner_text().count(FILE) == 1
    shot(pg, "tree-root", full_page=True)

    pg.click("#toggle-changed")
    names = pg.locator("#listing td.name").all_inner_texts()
    top = {p.split("/")[0] + ("/" if "/" in p else "") for p in prov.changed_paths(c)}
    assert sorted(names) == sorted(top)
    pg.click("text=virt/")
    pg.click("text=kvm/")
    shot(pg, "tree-dir")
    pg.click(f"text={FILE.rsplit('/', 1)[1]}")
    assert pg.url.endswith(f"/tree/{c.run.id}/{FILE}")

    # Every line's band has its series' colour, or none for the base.
    bands = pg.eval_on_selector_all("#code td.b > *", "els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert len(bands) == len(owners)
    for n, (colour, owner) in enumerate(zip(bands, owners), 1):
        want = rgb(owner.revision.colour_hex) if owner else "rgba(0, 0, 0, 0)"
        assert colour == want, f"line {n}"
    legend = pg.locator("#legend").inner_text()
    assert all(f"{r.title} v{r.version}" in legend for r in c.revisions)
    shot(pg, "file")

    # Hovering a band shows the patch: series, author, date, lore link.
    n = next(i for i, o in enumerate(owners, 1) if o and o.revision.msgid == UFFD_V3 and i > 30)
    pg.evaluate(f"document.getElementById('L{n}').scrollIntoView({{block: 'center'}})")
    pg.hover(f"#L{n} td.b a")
    card = pg.locator("#card")
    assert card.is_visible()
    text = card.inner_text()
    p = owners[n - 1]
    assert p.subject in text and "v3" in text and p.author.split(" <")[0] in text
    assert card.locator("a", has_text="mail on lore").get_attribute("href").endswith(f"/{p.msgid}/")
    shot(pg, "file-card")

    # Clicking a band opens the patch on its series page.
    pg.click(f"#L{n} td.b a")
    assert pg.url == f"{live_server.url}/series/{UFFD_V3}/#patch-{p.number}"


@pytest.mark.django_db(transaction=True)
def test_line_links_select_lines_and_update_the_permalink(chain, page, live_server):
    c, owners = chain
    pg = page
    pg.goto(f"{live_server.url}/tree/{c.run.id}/{FILE}#L40")
    assert pg.locator("#L40").get_attribute("class") == "sel"
    assert pg.input_value("#permalink").endswith(f"/tree/h/{c.head}/{FILE}#L40")
    pg.click("#L45 td.n a", modifiers=["Shift"])
    assert pg.evaluate("location.hash") == "#L40-L45"
    assert pg.locator("tr.sel").count() == 6
    assert pg.input_value("#permalink").endswith(f"/tree/h/{c.head}/{FILE}#L40-L45")
    pg.goto(f"{live_server.url}/tree/h/{c.head}/{FILE}#L40-L45")  # the pasted link, by content
    assert pg.locator("tr.sel").count() == 6


@pytest.mark.django_db(transaction=True)
def test_own_contribution_and_dependency_range_diff_pages(chain, page, live_server):
    c, _ = chain
    pg = page
    pg.goto(f"{live_server.url}/series/{UFFD_V3}/")
    pg.click("#browse-own-link")
    assert "itself changes" in pg.locator("h1").inner_text()
    assert "KVM: Mapping guest_memfd" in pg.locator("#on-top-of").inner_text()
    files = pg.locator("#diffstat td.mono").all_inner_texts()
    assert FILE in files and all(not f.startswith("include/linux/kvm_host.h") for f in files)
    shot(pg, "own-diff")

    pg.goto(f"{live_server.url}/series/{UFFD_V3}/")
    pg.click("#browse li.dep-update a")
    assert MAPPING_V8 in pg.url
    changed = pg.locator("#range-diff .rd-changed").all_inner_texts()
    same = pg.locator("#range-diff .rd-same").all_inner_texts()
    assert len(changed) == 1 and "Allow host to map" in changed[0] and len(same) == 3
    shot(pg, "range-diff", full_page=True)

    pg.goto(f"{live_server.url}/tree/{c.run.id}/diff")
    heads = pg.locator("h2.revhead").all_inner_texts()
    assert [h.split(" v")[0] for h in heads] == [r.title for r in c.revisions]
    assert pg.locator(".patchhead").count() == len(c.patches)
    shot(pg, "chain-diff")
    assert re.search(r"\d+ lines", pg.goto(f"{live_server.url}/tree/h/{c.head}/{FILE}").text())
