"""Malformed requests get 400 (not 500), 500s are logged, login lands on a page."""
from __future__ import annotations

import logging
import logging.config

import pytest
from django.contrib.auth.models import User


@pytest.mark.django_db
@pytest.mark.parametrize("url", [
    "/git/demo.git/info/refs%00x?service=git-upload-pack",
    "/git/demo.git/HEAD%00",
    "/tree/1/a%00b",
    "/series/?q=%00",
    "/series/x%01y@example.org/",
    "/range-diff/?old=a%00@x&new=b@x",
])
def test_control_characters_in_path_or_query_are_a_400(client, url):
    resp = client.get(url)
    assert resp.status_code == 400
    assert b"control character" in resp.content


@pytest.mark.django_db
def test_a_nul_in_a_posted_form_field_is_a_400(client):
    resp = client.post("/accounts/login/", {"username": "a\0b", "password": "x"})
    assert resp.status_code == 400


@pytest.mark.django_db
def test_after_login_the_redirect_lands_on_a_page_not_a_404(client):
    User.objects.create_user("rita", password="pw-rita-1")
    resp = client.post("/accounts/login/", {"username": "rita", "password": "pw-rita-1"})
    assert resp.status_code == 302
    landing = client.get(resp["Location"])
    assert landing.status_code == 200


def test_request_errors_have_a_handler_so_500s_are_logged():
    from django.conf import settings
    logger = settings.LOGGING["loggers"]["django.request"]
    assert logger["level"] == "ERROR" and logger["handlers"]
    logging.config.dictConfig(settings.LOGGING)
    assert logging.getLogger("django.request").handlers
