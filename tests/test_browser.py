"""A real browser (headless Debian Chromium, driven by Playwright) uses the chat window."""

from __future__ import annotations

import re
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


# --- sessions the way a person uses them: reload, restart, cancel, queue, upload ----------
class ChatServer:
    """The chat window on a fixed port (a browser keeps its session per address), restartable."""

    def __init__(self, config):
        import socket

        self.config = config
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.app = self.controller = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        from assistant.build import build_controller
        from frontends.chat_window import build_app

        self.controller, report = build_controller(self.config, with_asr=False)
        self.app = build_app(self.controller, report.notices)
        self.app.queue().launch(
            server_name="127.0.0.1",
            server_port=self.port,
            prevent_thread_lock=True,
            quiet=True,
            allowed_paths=[str(self.config.output_dir)],
        )

    def stop(self) -> None:
        self.app.close()
        self.controller.store.close()


@pytest.fixture
def server(tiny_config, tmp_path):
    config = tiny_config.model_copy(deep=True)
    config.output_dir, config.tts.enabled = tmp_path / "out", False
    chat = ChatServer(config)
    chat.start()
    try:
        yield chat
    finally:
        chat.stop()


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        finally:
            browser.close()


def open_window(page, url: str) -> None:
    from playwright.sync_api import expect

    page.goto(url, wait_until="domcontentloaded", timeout=60_000)
    expect(page.locator("#request textarea")).to_be_visible(timeout=60_000)
    # The page has its session once the browser remembers its id.
    page.wait_for_function(
        "localStorage.getItem('voice-image-assistant-session') !== null", timeout=60_000
    )


def say_in_window(page, text: str) -> None:
    page.locator("#request textarea").fill(text)
    page.locator("#send").click()


def wait_done(page, timeout: float = 60_000) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#status")).to_contain_text("Done in", timeout=timeout)


def shown_picture(page) -> str:
    return page.locator("#image img").get_attribute("src") or ""


def set_steps(page, steps: int) -> None:
    from playwright.sync_api import expect

    page.locator("#settings").get_by_text("Settings (this conversation)").click()
    box = page.locator("#steps input")
    expect(box).to_be_visible()
    box.click()  # typed as a person types (gradio's input event follows key presses)
    page.keyboard.press("Control+A")
    page.keyboard.type(str(steps))
    page.keyboard.press("Tab")  # no wait: a Send carries the settings shown with it


def expect_window_as_left(page, replies: list[str], pictures: int, current: str, steps: str):
    from playwright.sync_api import expect

    for reply in replies:
        expect(page.locator("#chat")).to_contain_text(reply, timeout=30_000)
    expect(page.locator("#history .thumbnail-item")).to_have_count(pictures, timeout=30_000)
    expect(page.locator("#image img")).to_have_attribute("src", re.compile(current))
    expect(page.locator("#details")).to_contain_text(current.split(".")[0])
    page.locator("#settings").get_by_text("Settings (this conversation)").click()
    expect(page.locator("#steps input")).to_have_value(steps)


def test_reload_and_restart_bring_the_conversation_back(server, page):
    from playwright.sync_api import expect

    open_window(page, server.url)
    set_steps(page, 3)
    say_in_window(page, "Draw a lighthouse on a cliff at night")
    wait_done(page)
    say_in_window(page, "make it darker")
    expect(page.locator("#details")).to_contain_text("edited from n1", timeout=60_000)
    wait_done(page)
    replies = ["Here's a lighthouse", "darker"]

    page.reload()
    expect_window_as_left(page, replies, pictures=2, current="n2.png", steps="3")

    server.stop()  # a server restart: the browser keeps its session id
    server.start()
    page.reload()
    expect_window_as_left(page, replies, pictures=2, current="n2.png", steps="3")
    say_in_window(page, "make it brighter")  # the session goes on where it stopped
    expect(page.locator("#details")).to_contain_text("edited from n2", timeout=60_000)


def test_cancel_mid_picture_shows_the_last_finished_one(server, page):
    from playwright.sync_api import expect

    open_window(page, server.url)
    say_in_window(page, "Draw a red barn")
    wait_done(page)
    finished = shown_picture(page)
    set_steps(page, 150)
    say_in_window(page, "Draw a green kite over a field")
    expect(page.locator("#status")).to_contain_text("Step", timeout=60_000)
    page.locator("#cancel").click()
    expect(page.locator("#status")).to_contain_text("Cancelled", timeout=60_000)
    assert "n1.png" in shown_picture(page) and shown_picture(page) == finished
    expect(page.locator("#details")).to_contain_text("n1")


def test_two_quick_sends_are_both_answered_in_order(server, page):
    from playwright.sync_api import expect

    open_window(page, server.url)
    say_in_window(page, "Draw a red barn")
    say_in_window(page, "what prompt did you use?")  # sent while the first is drawn
    chat = page.locator("#chat")
    expect(chat).to_contain_text("I used the prompt", timeout=60_000)
    text = chat.inner_text()
    assert text.index("Here's a red barn") < text.index("I used the prompt")
    assert text.index("Draw a red barn") < text.index("what prompt did you use?")
    wait_done(page)


def test_an_upload_is_used_by_one_turn_only(server, page, tmp_path):
    from PIL import Image
    from playwright.sync_api import expect

    photo = tmp_path / "photo.png"
    Image.new("RGB", (96, 80), (30, 120, 200)).save(photo)
    open_window(page, server.url)
    page.get_by_text("Start from a photo").click()
    page.locator("#upload input[type=file]").set_input_files(str(photo))
    expect(page.locator("#upload img")).to_be_visible(timeout=30_000)
    say_in_window(page, "make it darker")
    wait_done(page)
    expect(page.locator("#upload img")).to_have_count(0)  # cleared once used
    say_in_window(page, "make it brighter")
    expect(page.locator("#details")).to_contain_text("edited from n2", timeout=60_000)
    wait_done(page)
    nodes = next(iter(server.controller.list_sessions())).pictures
    assert nodes == 3  # the photo, and two edits: it was not imported again
