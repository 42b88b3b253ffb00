"""A real browser (headless Debian Chromium, driven by Playwright) uses the chat window."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# Flags for a closed network: no background calls home, no sandbox as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (scripts/test.sh does)"
)


@pytest.fixture(scope="module")
def chat_url(tiny_config, tmp_path_factory):
    from assistant.build import build_controller
    from frontends.chat_window import build_app

    controller, report = build_controller(tiny_config, with_asr=False)
    app = build_app(controller, report.notices)
    app.queue().launch(
        server_name="127.0.0.1",
        prevent_thread_lock=True,
        quiet=True,
        allowed_paths=[str(tiny_config.output_dir)],
    )
    try:
        yield app.local_url
    finally:
        app.close()


def test_typing_a_request_shows_an_image_and_the_reply(chat_url):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(chat_url, wait_until="domcontentloaded", timeout=60_000)
            expect(page.locator("#request textarea")).to_be_visible(timeout=60_000)
            expect(page.locator("#notice")).to_contain_text("placeholder")
            page.locator("#request textarea").fill("Draw a lighthouse on a cliff at night")
            page.locator("#send").click()
            expect(page.locator("#image img")).to_be_visible(timeout=60_000)
            expect(page.locator("#chat")).to_contain_text("Here's a lighthouse", timeout=60_000)
            expect(page.locator("#details")).to_contain_text("lighthouse on a cliff at night")
            # The spoken reply arrives last; waiting for it also lets the turn finish cleanly.
            expect(page.locator("#speech a[download$='.wav']")).to_be_attached(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "chat_window.png"), full_page=True)
        finally:
            browser.close()
