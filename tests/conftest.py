"""Shared fixtures: the real mails beside the repo, a data dir per test, named actors."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LORE = REPO.parent / "shared" / "lore"


@pytest.fixture
def lore_dir() -> Path:
    assert LORE.is_dir(), f"{LORE} holds the real kernel mails the tests read"
    return LORE


@pytest.fixture
def data_dir(tmp_path, settings):
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()
    return settings.DATA_DIR
