import pytest
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from reviewapp.permissions import MAINTAINERS


def _client(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def anonymous(db) -> APIClient:
    return _client(None)


@pytest.fixture
def reviewer(db) -> APIClient:
    return _client(User.objects.create_user("rita", password="x"))


@pytest.fixture
def maintainer(db) -> APIClient:
    user = User.objects.create_user("max", password="x")
    user.groups.add(Group.objects.get_or_create(name=MAINTAINERS)[0])
    return _client(user)
