"""Real-browser tests: Playwright for Python driving Debian's Chromium (docs/adr/0043), never a downloaded browser.

`make test` installs the `chromium` package when it is missing (scripts/test.sh, root + apt-get); without it these
tests are skipped with the reason. The app is served by pytest-django's `live_server` (a thread of this process on
the test database, static files included), so the tests are transactional and commit their data.

Playwright's sync API runs an asyncio loop in this thread while the browser is open, and Django refuses ORM calls
while a loop runs (SynchronousOnlyOperation): a test makes its data first, then opens the browser
(`back_office`), and stops it (`BackOffice.stop`) before it reads the database again.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".data" / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "browser: a real-browser test (Playwright driving Debian's Chromium; `pytest -m browser`)"
    )


def pytest_collection_modifyitems(config, items):
    reason = None
    if CHROMIUM is None:
        reason = (
            "no `chromium` on PATH: `make test` installs Debian's chromium package as root (apt-get install "
            "chromium); the browser tests need it"
        )
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "Playwright for Python is not installed (`make install` installs the dev extras)"
    if reason:
        for item in items:
            if "browser" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


class BackOffice:
    """One headless Chromium at 1366×768 on the live server, logged in as a staff user through the login form."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self._playwright = None
        self.browser = None
        self.page = None

    def start(self) -> BackOffice:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self.browser = self._playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = self.browser.new_context(viewport=VIEWPORT, locale="en-US", timezone_id="UTC")
        context.set_default_timeout(15_000)
        self.page = context.new_page()
        return self

    def stop(self) -> None:
        """Close the browser; the test may use the ORM again afterwards."""
        if self._playwright is not None:
            self.browser.close()
            self._playwright.stop()
            self._playwright = self.browser = self.page = None

    def open(self, path: str):
        response = self.page.goto(self.base_url + path)
        assert response is not None and response.status == 200, (path, response and response.status)
        assert self.page.title().endswith("PayTrust back office"), (path, self.page.title())
        return self.page

    def log_in(self, username: str, password: str) -> None:
        page = self.open("/admin/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.wait_for_url(re.compile(r".*/admin/$"))

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def assert_no_horizontal_scroll(self) -> None:
        """The page fits the 1366-px window: nothing to scroll sideways, neither the page nor a list's table
        (Django's changelist scrolls its table inside `.results`, so the page alone would hide a clipped column)."""
        widths = self.page.evaluate(
            """() => {
                const page = document.documentElement;
                const results = document.querySelector("#changelist-form .results");
                return {
                    page: page.scrollWidth, window: page.clientWidth,
                    table: results ? results.scrollWidth : 0, box: results ? results.clientWidth : 0,
                };
            }"""
        )
        assert widths["page"] <= widths["window"] <= VIEWPORT["width"], (self.page.url, widths)
        assert widths["table"] <= widths["box"], (self.page.url, widths)


@pytest.fixture
def back_office(live_server):
    """A started BackOffice (request it after the fixtures that make data); stopped at teardown."""
    office = BackOffice(live_server.url).start()
    yield office
    office.stop()
