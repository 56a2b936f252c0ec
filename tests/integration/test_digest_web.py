"""Digest pages: subscriptions for maintainers only, the preview, the signed
unsubscribe link taken from a really sent digest, and a browser screenshot."""
import email
import email.policy
import re

import pytest
from django.contrib.auth.models import Group, User

from reviewapp.models import AuditLog, Subscription
from reviewapp.services import digests
from tests.integration.test_digest_content import FIRST, demo  # noqa: F401
from tests.support.browser import screenshot
from tests.support.smtp_server import SmtpServer


@pytest.fixture
def maintainer(db):
    user = User.objects.create_user("mia", password="pw-mia-123")
    user.groups.add(Group.objects.get_or_create(name="maintainers")[0])
    return user


@pytest.fixture
def reviewer(db):
    return User.objects.create_user("rex", password="pw-rex-123")


def pages(sub_id: int) -> list[str]:
    return ["/digests/", "/digests/new/", f"/digests/{sub_id}/edit/", f"/digests/{sub_id}/preview"]


@pytest.mark.django_db
def test_reviewers_and_strangers_get_403_and_refused_actions_are_logged(client, reviewer, demo):
    for url in pages(demo["sub"].pk):
        assert client.get(url).status_code == 403, url
    client.force_login(reviewer)
    for url in pages(demo["sub"].pk):
        assert client.get(url).status_code == 403, url
    assert client.post("/digests/new/", {"address": "evil@example.org", "period": "daily"}).status_code == 403
    assert not Subscription.objects.filter(address="evil@example.org").exists()
    # refused reads write nothing (a GET only reads); the refused POST is counted
    assert list(AuditLog.objects.filter(allowed=False).values_list("user", "count")) == [("rex", 1)]


@pytest.mark.django_db
def test_maintainer_creates_edits_and_previews_a_subscription(client, maintainer, demo):
    client.force_login(maintainer)
    for url in pages(demo["sub"].pk):
        assert client.get(url).status_code == 200, url
    resp = client.post("/digests/new/", {"address": "kvm@vger.kernel.org", "name": "kvm",
                                         "period": "daily", "lists": "kvm", "paths": "virt/kvm/\nmm/",
                                         "trees": "", "watched": "", "active": "on"})
    assert resp.status_code == 302
    sub = Subscription.objects.get(address="kvm@vger.kernel.org")
    assert (sub.period, sub.lists, sub.paths, sub.active) == ("daily", ["kvm"], ["virt/kvm/", "mm/"], True)
    bad = client.post("/digests/new/", {"address": "not an address", "period": "hourly"})
    assert bad.status_code == 200 and b"errorlist" in bad.content
    client.post(f"/digests/{sub.pk}/edit/", {"address": sub.address, "name": "kvm", "period": "weekly",
                                             "lists": "kvm, linux-mm", "paths": "", "trees": "",
                                             "watched": ""})
    sub.refresh_from_db()
    assert (sub.period, sub.lists, sub.paths, sub.active) == ("weekly", ["kvm", "linux-mm"], [], False)
    page = client.get(f"/digests/{demo['sub'].pk}/preview").content.decode()
    assert "support for uffd minor" in page and "v8 was posted on" in page
    assert "[reviewapp] linux-mm digest" in page


def _unsubscribe_path(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    header = re.fullmatch(r"<https://review\.example\.org(/digests/unsubscribe/[^>]+/)>",
                          str(msg["List-Unsubscribe"]))
    assert header and header.group(1) in msg.get_content()
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    return header.group(1)


@pytest.mark.django_db
def test_unsubscribe_link_from_a_sent_digest_confirms_then_deactivates(client, demo, settings):
    with SmtpServer() as server:
        settings.SMTP = server.settings()
        digests.send_due(FIRST)
        link = _unsubscribe_path(server.messages[0].data)
    sub = demo["sub"]
    page = client.get(link)
    assert page.status_code == 200 and b"Unsubscribe linux-mm@kvack.org?" in page.content
    sub.refresh_from_db()
    assert sub.active  # a GET (link scanners, previews) changes nothing
    assert b"Unsubscribed" in client.post(link).content
    sub.refresh_from_db()
    assert not sub.active
    assert digests.compose_all_due(FIRST.replace(day=30)) == []  # no more digests


@pytest.mark.django_db
def test_tampered_or_foreign_unsubscribe_tokens_are_rejected(client, demo):
    sub = demo["sub"]
    token = digests.unsubscribe_token(sub)
    other = digests.subscribe("other@example.org")
    forged = token.replace(token.split(":")[0], digests.unsubscribe_token(other).split(":")[0])
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), forged, "nonsense"):
        resp = client.post(f"/digests/unsubscribe/{bad}/")
        assert resp.status_code == 404 and b"not valid" in resp.content
    sub.refresh_from_db()
    other.refresh_from_db()
    assert sub.active and other.active


@pytest.mark.django_db
def test_one_click_unsubscribe_post_from_a_mail_client_needs_no_csrf(demo):
    from django.test import Client
    strict = Client(enforce_csrf_checks=True)
    resp = strict.post(f"/digests/unsubscribe/{digests.unsubscribe_token(demo['sub'])}/",
                       {"List-Unsubscribe": "One-Click"})
    assert resp.status_code == 200
    demo["sub"].refresh_from_db()
    assert not demo["sub"].active


@pytest.mark.django_db(transaction=True)
def test_preview_page_in_a_real_browser(maintainer, demo, page):
    page.set_viewport_size({"width": 1100, "height": 1400})
    page.goto(f"{page.base}/accounts/login/")
    page.fill("input[name=username]", "mia")
    page.fill("input[name=password]", "pw-mia-123")
    page.click("button[type=submit], input[type=submit]")
    page.goto(f"{page.base}/digests/{demo['sub'].pk}/preview")
    text = page.inner_text("#digest-text")
    shot = screenshot(page, "digest-preview")
    assert "support for uffd minor" in text and "applies cleanly" in text
    assert shot.stat().st_size > 10_000  # docs/screenshots/digest-preview.png is a copy
