"""Headless Debian Chromium driven by Playwright, for page tests; screenshots kept per run."""
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def chromium_page(width: int = 1400, height: int = 900):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def screenshot(page, name: str, full_page: bool = True) -> Path:
    """Saves test-artifacts/screenshots/<name>.png. page may be a Locator (pass
    full_page=False): then only that element is shot."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), **({"full_page": True} if full_page else {}))
    return path


@pytest.fixture
def page(live_server):
    """A Chromium page; Django's async-unsafe guard is lifted since Playwright's sync API runs a loop."""
    import os
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium_page() as p:
        p.base = live_server.url
        yield p
