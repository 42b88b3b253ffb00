"""The chat window (gradio): type or record a request, see the image form, read and hear the reply.

Each browser keeps its session id in local storage (``gr.BrowserState``), so a reload, or a
server restart, brings the conversation, the pictures and the settings back from the session
store. Everything the window does goes through the controller's verbs (``run_turn``,
``select``, ``update_settings``, ``resume``, ``list_sessions``, ``hear``).

Requests are queued per browser and answered in order by one worker (one image job at a time
across all browsers); the window shows queued requests as they wait. Importing this module
builds nothing heavy: ``build_app`` takes a ready Controller.
"""

# No `from __future__ import annotations`: gradio reads the real `gr.SelectData` annotation.
import logging
import os
import queue
import secrets
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.config import Config, ConfigError
from assistant.controller import Controller, Session, UserInput
from assistant.errors import AssistantError
from assistant.events import Event, EventType
from assistant.i18n import reply_languages
from assistant.language import language_name

logger = logging.getLogger(__name__)
# Run in the browser as a request is sent: the request box is emptied at once, on the page,
# so a second request typed while the first is answered is never erased by the first's reply.
# The values were read before; they go to the server unchanged.
CLEAR_REQUEST_JS = """
(...values) => {
  const box = document.querySelector('#request textarea');
  if (box) { box.value = ''; box.dispatchEvent(new Event('input', {bubbles: true})); }
  return values;
}
"""

TITLE = "Voice & chat image assistant"
MAX_SESSIONS_IN_MEMORY = 200  # beyond this the least recently used is dropped (it stays stored)
SIZES = ["model default", "256x256", "512x512", "768x768", "512x768", "768x512", "1024x1024"]
# Languages offered for "I speak ...": those with reply catalogs and a few more Whisper knows.
SPEECH_LANGUAGES = ["en", "de", "fr", "es", "it", "pt", "nl", "sv", "pl", "ja", "zh"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
AUTH_ENV = "ASSISTANT_UI_AUTH"  # "user:password,user2:password2"


# --- one request and the worker that answers requests in order ---------------------------
CANCELLING = object()  # put in a job's events by Cancel, ahead of the turn's own end


@dataclass
class TurnJob:
    """One request waiting for, or in, its turn; the worker posts the turn's events here."""

    user_input: UserInput
    label: str  # how the request reads in the conversation
    cancel: threading.Event = field(default_factory=threading.Event)
    events: queue.Queue = field(default_factory=queue.Queue)
    recorded: bool = False  # its exchange is in the session's history (the reply came)
    done: bool = False


@dataclass
class ChatTab:
    """What the window holds for one session: the session and its requests, in order."""

    session: Session
    jobs: deque = field(default_factory=deque)  # TurnJob, the first one running
    lock: threading.Lock = field(default_factory=threading.Lock)
    drainer: int = 0  # which stream shows the jobs (a reload takes over from the old page)
    streaming: int = 0  # streams showing the jobs now

    def cancel_current(self) -> bool:
        """Stop the running request; its own stream shows "Cancelling…" then how it ended.

        The note goes through the job's event queue, not the Cancel click's output: a click
        answered after the turn already ended would otherwise leave "Cancelling…" for good.
        """
        with self.lock:
            if self.jobs and not self.jobs[0].done and not self.jobs[0].cancel.is_set():
                self.jobs[0].cancel.set()
                self.jobs[0].events.put(CANCELLING)
                return True
        return False


class TurnRunner:
    """Runs turns one at a time, in the order they were sent, on one worker thread."""

    def __init__(self, controller: Controller):
        self.controller = controller
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, tab: ChatTab, job: TurnJob) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="chat-turns", daemon=True)
                self._thread.start()
        self._queue.put((tab, job))

    def _work(self) -> None:
        while True:
            tab, job = self._queue.get()
            try:
                for event in self.controller.run_turn(tab.session, job.user_input, job.cancel):
                    if event.type == EventType.REPLY:
                        job.recorded = True
                    job.events.put(event)
            except Exception:  # the controller ends failed turns itself; this is a bug
                logger.exception("Chat turn of session %s failed", tab.session.id)
            finally:
                job.recorded = job.done = True
                job.events.put(None)


class ChatSessions:
    """The sessions this window has open, by id; others are resumed from the store."""

    def __init__(self, controller: Controller):
        self.controller = controller
        self._tabs: OrderedDict[str, ChatTab] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session_id: str | None) -> ChatTab:
        """The session ``session_id`` (open, or resumed), else a new one."""
        with self._lock:
            tab = self._tabs.get(session_id) if session_id else None
            if tab is None:
                tab = ChatTab(self._open(session_id))
                self._tabs[tab.session.id] = tab
                while len(self._tabs) > MAX_SESSIONS_IN_MEMORY:
                    self._tabs.popitem(last=False)
            self._tabs.move_to_end(tab.session.id)
            return tab

    def new(self) -> ChatTab:
        return self.get(None)

    def _open(self, session_id: str | None) -> Session:
        if session_id and self.controller.keeps_sessions:
            try:
                return self.controller.resume(session_id)
            except AssistantError:
                logger.info("Session %s is not stored: starting a new one", session_id)
        return self.controller.new_session()


# --- what the window shows ---------------------------------------------------------------
def _pictures(session: Session) -> list:
    """The session's pictures whose files exist, in the order they were made."""
    return [n for n in list(session.state.nodes.values()) if Path(n.path).is_file()]


def gallery_items(session: Session) -> tuple[list[tuple[str, str]], int | None]:
    """(path, caption) per picture, and the index of the one in focus (None: none)."""
    nodes = _pictures(session)
    items = [(n.path, f"{n.id}: {n.prompt[:60]}") for n in nodes]
    ids = [n.id for n in nodes]
    focus = session.state.focus_id
    return items, ids.index(focus) if focus in ids else None


def details(session: Session) -> str:
    node = session.state.current
    if node is None:
        return "*No picture yet.*"
    parent = f" · edited from {node.parent_id}" if node.parent_id else ""
    size = f"{node.width}×{node.height}"
    if node.steps:  # drawn by denoising: seed, steps and guidance say how
        how = f"seed `{node.seed}` · {node.steps} steps · guidance {node.guidance:g} · {size}"
    else:  # an upload, or an upscale by resampling: no seed or steps to tell
        how = size
    return (
        f"**{node.id}** · {node.operation}{parent} · {how}\n\n**Prompt:** {node.prompt or '—'}"
        f"\n\n**Negative:** {node.negative_prompt or '—'}"
    )


def conversation(tab: ChatTab) -> list[dict]:
    """The chat as messages: what the session recorded, then requests still under way."""
    messages = []
    for exchange in list(tab.session.state.history):
        messages.append({"role": "user", "content": exchange.user or "…"})
        if exchange.reply:
            messages.append({"role": "assistant", "content": exchange.reply})
    with tab.lock:
        jobs = list(tab.jobs)
    for position, job in enumerate(jobs):
        if job.recorded:
            continue
        note = "" if position == 0 else "\n\n*(queued: answered in turn)*"
        messages.append({"role": "user", "content": job.label + note})
    return messages


def current_picture(session: Session) -> str | None:
    node = session.state.current
    return node.path if node is not None and Path(node.path).is_file() else None


@dataclass
class View:
    """The part of the window a turn changes."""

    image: Any = None
    status: str = ""
    speech: str | None = None


def render(tab: ChatTab, view: View) -> tuple:
    """(chat, image, status, speech, details, gallery) for ``tab``."""
    import gradio as gr

    items, selected = gallery_items(tab.session)
    return (
        conversation(tab),
        view.image,
        view.status,
        view.speech,
        details(tab.session),
        gr.Gallery(value=items, selected_index=selected),
    )


def apply_event(event: Event, view: View, session: Session) -> None:
    """Update ``view`` for one event of a running turn."""
    d = event.data
    match event.type:
        case EventType.PLAN if d.get("prompt"):
            view.status = f"Drawing: *{d['prompt']}*"
        case EventType.IMAGE_PROGRESS:
            view.status = f"Step {d['step']} of {d['total']}"
            if d.get("preview") is not None:
                view.image = d["preview"]
        case EventType.IMAGE_DONE:
            view.image = current_picture(session)
        case EventType.ERROR:
            view.status = f"⚠️ `{d['code']}`: {d['message']}"
        case EventType.TTS_END:
            view.speech = d.get("path")
        case EventType.TURN_END:
            # The last finished picture, never a half-made preview (after Cancel too).
            view.image = current_picture(session)
            if d["outcome"] == "cancelled":
                view.status = "Cancelled. The last finished picture is shown."
            elif d["ok"]:
                view.status = f"Done in {d['seconds']:.1f} s."


def stream_jobs(tab: ChatTab, first: View | None = None) -> Iterator[tuple]:
    """Show ``tab``'s requests as they are answered, until none is left.

    A newer stream (the same session reloaded) takes over; this one then stops.
    """
    with tab.lock:
        tab.drainer += 1
        tab.streaming += 1
        me = tab.drainer
    try:
        yield from _stream(tab, me, first or View(image=current_picture(tab.session)))
    finally:
        with tab.lock:
            tab.streaming -= 1


def _stream(tab: ChatTab, me: int, view: View) -> Iterator[tuple]:
    while True:
        with tab.lock:
            job = tab.jobs[0] if tab.jobs else None
        if job is None or me != tab.drainer:
            return
        ahead = len(tab.jobs) - 1
        view.status = "Working…" + (f" ({ahead} more queued)" if ahead else "")
        yield render(tab, view)
        while (event := job.events.get()) is not None:
            if event is CANCELLING:
                view.status = "Cancelling…"
            else:
                apply_event(event, view, tab.session)
            if me != tab.drainer:
                return
            if event is CANCELLING or event.type != EventType.TTS_CHUNK:
                yield render(tab, view)
        with tab.lock:
            if tab.jobs and tab.jobs[0] is job:
                tab.jobs.popleft()
        yield render(tab, view)


def make_input(
    text: str | None, audio: Any = None, upload: Any = None, editor: Any = None
) -> UserInput:
    """What the widgets hold, as the controller's UserInput (typed text wins over audio)."""
    text = (text or "").strip()
    return UserInput(
        text=text,
        audio=audio if audio is not None and not text else None,
        image=upload,
        mask=mask_from_editor(editor),
    )


def input_label(user_input: UserInput) -> str:
    """How a request reads in the conversation before it is answered."""
    label = user_input.text or ("🎤 (spoken request)" if user_input.audio is not None else "")
    if user_input.image is not None:
        label = f"📷 {label}".strip()
    return label


def mask_from_editor(editor: Any):
    """The mask brush's strokes (gr.ImageEditor layers) as a white-on-black mask, or None."""
    from PIL import Image

    layers = (
        [x for x in (editor or {}).get("layers") or [] if x is not None]
        if isinstance(editor, dict)
        else []
    )
    if not layers:
        return None
    alpha = np.zeros(0)
    for layer in layers:
        layer = layer if isinstance(layer, Image.Image) else Image.open(layer)
        a = np.asarray(layer.convert("RGBA").getchannel("A"))
        alpha = a if alpha.size == 0 else np.maximum(alpha, a)
    if not alpha.any():
        return None
    return Image.fromarray(np.where(alpha > 0, 255, 0).astype(np.uint8), mode="L")


def reply_language_choices() -> list[tuple[str, str]]:
    """(label, value) pairs: follow the person, or one language with a reply catalog."""
    names = [(f"{language_name(code, code)} ({code})", code) for code in reply_languages()]
    return [("Follow me (auto)", "auto"), *names]


def speech_language_choices() -> list[tuple[str, str]]:
    """(label, value): detect the spoken language, or say which one it is."""
    names = [(f"{language_name(code, code)} ({code})", code) for code in SPEECH_LANGUAGES]
    return [("Detect it (auto)", "auto"), *names]


def session_choices(controller: Controller) -> list[tuple[str, str]]:
    """Earlier conversations, newest first: (label, session id)."""
    out = []
    for s in controller.list_sessions():
        when = time.strftime("%d %b %H:%M", time.localtime(s.updated))
        title = (s.title or "(nothing asked yet)")[:50]
        out.append((f"{title} · {when} · {s.pictures} pictures", s.id))
    return out


# --- settings: widget values <-> SessionSettings --------------------------------------------
def settings_changes(
    steps, guidance, size, seed, strength, style, raw, model, voice, reply_lang, speech_lang
) -> dict[str, Any]:
    """The settings panel's values as ``Controller.update_settings`` keywords."""
    width = height = None
    if size and size != "model default":
        width, height = (int(x) for x in size.split("x"))
    return {
        "steps": _number(steps, int, "Steps"),
        "guidance": _number(guidance, float, "Guidance"),
        "seed": _number(seed, int, "Seed"),
        "width": width,
        "height": height,
        "edit_strength": float(strength) if strength else None,
        "style": None if style in (None, "none") else style,
        "raw": bool(raw),
        "image_model": None if model in (None, "default") else model,
        "voice": None if voice in (None, "default") else voice,
        "reply_language": None if reply_lang in (None, "auto") else reply_lang,
        "speech_language": None if speech_lang in (None, "auto") else speech_lang,
    }


def _number(value: Any, kind: type, label: str) -> Any:
    """A number typed in a settings box, None when blank."""
    text = str(value if value is not None else "").strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError as e:
        raise AssistantError(
            "input-invalid", f"{label} must be a {kind.__name__} number or blank, not {text!r}."
        ) from e


def _shown(value: Any) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def settings_values(controller: Controller, session: Session) -> list[Any]:
    """The panel's widget values for a session's settings (in ``settings_changes`` order)."""
    s = session.settings
    size = f"{s.width}x{s.height}" if s.width and s.height else "model default"
    return [
        _shown(s.steps),
        _shown(s.guidance),
        size if size in SIZES else "model default",
        _shown(s.seed),
        s.edit_strength or controller.defaults.edit_strength,
        s.style or "none",
        s.raw,
        s.image_model or "default",
        s.voice or "default",
        s.reply_language or "auto",
        s.speech_language or "auto",
    ]


def browser_secret(controller: Controller) -> str:
    """The key the browser's stored session id is sealed with, kept beside the sessions so a
    restarted server can still read what browsers remember."""
    path = controller.output_dir / ".chat-window-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
                f.write(secrets.token_urlsafe(32))
        except FileExistsError:  # another process wrote it first
            pass
    return path.read_text().strip()


# Buttons that say a request for you: one place, so the grammar and the buttons agree.
BUTTON_REQUESTS = {
    "Undo": "undo",
    "Redo": "redo",
    "Variations": "three more like that",
    "Upscale ×2": "upscale it",
}


def build_app(controller: Controller, notices: list[str] | None = None):
    """The gradio Blocks app around a ready controller: the chat tab and the voice demo tab."""
    import gradio as gr

    sessions = ChatSessions(controller)
    runner = TurnRunner(controller)
    with gr.Blocks(title=TITLE) as app:
        session_id = gr.State(None)  # this page's session
        remembered = gr.BrowserState(
            None, storage_key="voice-image-assistant-session", secret=browser_secret(controller)
        )
        gr.Markdown(
            f"## {TITLE}\nSay or type what to draw, then ask for changes: "
            "*make it darker*, *again*, *extend it to the left*, *undo*, "
            "*what prompt did you use?*"
        )
        for notice in notices or []:
            gr.Markdown(f"> ⚠️ **Placeholder pictures.** {notice}", elem_id="notice")
        with gr.Tab("Chat", id="chat-tab"):
            with gr.Accordion("Settings (this conversation)", open=False, elem_id="settings"):
                with gr.Row():
                    # Text boxes: a blank one means "the default" (a number box reads blank as 0).
                    steps = gr.Textbox(
                        "", label="Steps (blank: the model's)", max_lines=1, elem_id="steps"
                    )
                    guidance = gr.Textbox(
                        "", label="Guidance (blank: the model's)", max_lines=1, elem_id="guidance"
                    )
                    size = gr.Dropdown(SIZES, value="model default", label="Size")
                    seed = gr.Textbox("", label="Seed (blank: random)", max_lines=1, elem_id="seed")
                    strength = gr.Slider(
                        0.05,
                        1.0,
                        value=controller.defaults.edit_strength,
                        step=0.05,
                        label="Edit strength",
                    )
                with gr.Row():
                    style = gr.Dropdown(
                        ["none", *controller.style_choices], value="none", label="Style"
                    )
                    model_choice = gr.Dropdown(
                        ["default", *controller.image_model_choices],
                        value="default",
                        label="Image model (loaded on first use)",
                        elem_id="image-model",
                    )
                    voice_choice = gr.Dropdown(
                        ["default", *controller.voice_choices],
                        value="default",
                        label="Voice",
                        elem_id="voice",
                    )
                    reply_language = gr.Dropdown(
                        reply_language_choices(), value="auto", label="Reply language"
                    )
                    speech_language = gr.Dropdown(
                        speech_language_choices(),
                        value="auto",
                        label="I speak",
                        elem_id="speech-language",
                    )
                with gr.Row():
                    raw = gr.Checkbox(False, label="Raw mode: use my words as the prompt")
                    autoplay = gr.Checkbox(True, label="Speak replies")
                    settings_note = gr.Markdown(elem_id="settings-note")
            with gr.Row():
                earlier = gr.Dropdown([], label="Earlier conversations", scale=4, elem_id="earlier")
                fresh = gr.Button("New conversation", scale=1, elem_id="new-session")
            with gr.Row():
                with gr.Column(scale=1, min_width=320):
                    chat = gr.Chatbot(label="Conversation", height=380, elem_id="chat")
                    text = gr.Textbox(
                        placeholder="Draw a lighthouse on a cliff at night",
                        label="Request",
                        elem_id="request",
                    )
                    with gr.Row():
                        send = gr.Button("Send", variant="primary", elem_id="send")
                        cancel = gr.Button("Cancel", elem_id="cancel")
                with gr.Column(scale=1, min_width=320):
                    # Right after the request box on a narrow screen (the columns stack).
                    image = gr.Image(
                        label="Current picture",
                        type="filepath",
                        height=380,
                        interactive=False,
                        elem_id="image",
                    )
                    status = gr.Markdown(elem_id="status")
                    details_box = gr.Markdown("*No picture yet.*", elem_id="details")
                    gallery = gr.Gallery(
                        label="History (click one to go back to it)",
                        columns=6,
                        height=140,
                        allow_preview=False,
                        elem_id="history",
                    )
            with gr.Row():
                with gr.Column(scale=1, min_width=320):
                    mic = gr.Audio(
                        sources=["microphone", "upload"],
                        type="filepath",
                        label="…or speak",
                        elem_id="mic",
                    )
                    with gr.Row():
                        quick = {
                            label: gr.Button(label, size="sm", elem_id=f"btn-{i}")
                            for i, label in enumerate(BUTTON_REQUESTS)
                        }
                    with gr.Row():
                        direction = gr.Dropdown(
                            ["left", "right", "up", "down", "all"],
                            value="right",
                            label="Extend",
                            scale=1,
                        )
                        pixels = gr.Slider(64, 512, value=128, step=64, label="by pixels", scale=2)
                        extend = gr.Button("Extend", size="sm", scale=1, elem_id="extend")
                    speech = gr.Audio(
                        label="Spoken reply", autoplay=True, interactive=False, elem_id="speech"
                    )
                with gr.Column(scale=1, min_width=320):
                    with gr.Accordion("Start from a photo (used by the next request)", open=False):
                        upload = gr.Image(type="pil", label="Photo to edit", elem_id="upload")
                    with gr.Accordion("Repaint part of the picture", open=False):
                        brush = gr.ImageEditor(
                            type="pil",
                            label="Paint over what to change",
                            brush=gr.Brush(colors=["#ffffff"]),
                            elem_id="brush",
                        )
                        region = gr.Textbox(
                            label="…and say what goes there",
                            placeholder="a golden crown",
                            elem_id="region",
                        )
                        repaint = gr.Button("Repaint", elem_id="repaint")

        settings = [
            steps,
            guidance,
            size,
            seed,
            strength,
            style,
            raw,
            model_choice,
            voice_choice,
            reply_language,
            speech_language,
        ]
        view = [chat, image, status, speech, details_box, gallery]
        turn_outputs = [*view, session_id, remembered, text, mic, upload]

        def submit(sid, user_input: UserInput, clear_inputs: bool, shown_settings=()):
            """Queue one request and show the session's requests until all are answered.

            ``shown_settings``: the settings panel's values as the request was sent; the turn
            runs with them even when their own change event has not reached us yet.
            """
            tab = sessions.get(sid)
            keep = (gr.skip(),) * 3
            # The typed text was cleared in the browser when it was sent (CLEAR_REQUEST_JS):
            # clearing it from here too would erase what the person types while this runs.
            cleared = (gr.skip(), None, None) if clear_inputs else keep
            ids = (tab.session.id, tab.session.id)
            if not user_input.text and user_input.audio is None:
                note = "Type a request, or record one, first."
                yield *render(tab, View(current_picture(tab.session), note)), *ids, *keep
                return
            if shown_settings:
                try:
                    apply_shown_settings(tab.session, shown_settings)
                except AssistantError as e:
                    note = f"⚠️ `{e.code}`: {e.message}"
                    yield *render(tab, View(current_picture(tab.session), note)), *ids, *keep
                    return
            job = TurnJob(user_input, input_label(user_input))
            with tab.lock:
                tab.jobs.append(job)
                already_streaming = tab.streaming > 0
            runner.submit(tab, job)
            if already_streaming:  # the stream showing the first request shows this one too
                queued = View(current_picture(tab.session), "Queued: answered in turn.")
                yield *render(tab, queued), *ids, *cleared
                return
            first = True
            for update in stream_jobs(tab):
                yield *update, *ids, *(cleared if first else keep)
                first = False

        def apply_shown_settings(session, values) -> None:
            changes = settings_changes(*values)
            current = session.settings.model_dump()
            if any(current.get(key) != value for key, value in changes.items()):
                controller.update_settings(session, **changes)

        def on_send(text_value, audio_value, upload_value, sid, *shown):
            user_input = make_input(text_value, audio_value, upload_value)
            yield from submit(sid, user_input, True, shown)

        def on_repaint(region_text, editor_value, sid, *shown):
            # With strokes this repaints them; with none it is an ordinary edit of the picture.
            yield from submit(sid, make_input(region_text, editor=editor_value), False, shown)

        def says(request: str):
            def handler(sid, *shown):
                yield from submit(sid, UserInput(request), False, shown)

            return handler

        def on_extend(direction_value, pixels_value, sid, *shown):
            request = f"extend it {direction_value} by {int(pixels_value)} px"
            yield from submit(sid, UserInput(request), False, shown)

        def on_load(sid, stored_id):
            """A (re)loaded page: the browser's session back, and whatever it still runs."""
            tab = sessions.get(sid or stored_id)
            ids = (tab.session.id, tab.session.id)
            values = settings_values(controller, tab.session)
            choices = gr.Dropdown(choices=session_choices(controller), value=tab.session.id)
            first = View(current_picture(tab.session), "")
            yield *render(tab, first), *ids, *values, choices
            for update in stream_jobs(tab, first):
                yield *update, *ids, *(gr.skip(),) * len(values), gr.skip()

        def on_switch(chosen_id, sid):
            if not chosen_id or chosen_id == sid:
                return (gr.skip(),) * (len(view) + 2 + len(settings))
            tab = sessions.get(chosen_id)
            ids = (tab.session.id, tab.session.id)
            values = settings_values(controller, tab.session)
            return *render(tab, View(current_picture(tab.session))), *ids, *values

        def on_new():
            tab = sessions.new()
            ids = (tab.session.id, tab.session.id)
            values = settings_values(controller, tab.session)
            choices = gr.Dropdown(choices=session_choices(controller), value=None)
            return *render(tab, View()), *ids, *values, choices

        def on_select(sid, evt: gr.SelectData):
            tab = sessions.get(sid)
            nodes = _pictures(tab.session)
            if not 0 <= evt.index < len(nodes):
                return (gr.skip(),) * 4
            controller.select(tab.session, nodes[evt.index].id)
            picture = current_picture(tab.session)
            items, selected = gallery_items(tab.session)
            return (
                picture,
                details(tab.session),
                picture,
                gr.Gallery(value=items, selected_index=selected),
            )

        def on_cancel(sid):
            sessions.get(sid).cancel_current()

        def on_settings(sid, stored_id, *values):
            tab = sessions.get(sid or stored_id)
            ids = (tab.session.id, tab.session.id)
            try:
                controller.update_settings(tab.session, **settings_changes(*values))
            except AssistantError as e:
                return f"⚠️ `{e.code}`: {e.message}", *ids
            return "", *ids

        load_outputs = [*view, session_id, remembered, *settings, earlier]
        app.load(on_load, [session_id, remembered], load_outputs, api_name=False)
        # Requests queue per session and are answered in order by one worker: these handlers
        # only stream, so they run at once (a second Send during a turn is queued, not lost).
        stream = {"concurrency_limit": None, "trigger_mode": "multiple"}
        send.click(
            on_send,
            [text, mic, upload, session_id, *settings],
            turn_outputs,
            api_name="send",
            js=CLEAR_REQUEST_JS,
            **stream,
        )
        text.submit(
            on_send,
            [text, mic, upload, session_id, *settings],
            turn_outputs,
            api_name=False,
            js=CLEAR_REQUEST_JS,
            **stream,
        )
        with_settings = [session_id, *settings]
        mic.stop_recording(
            on_send, [text, mic, upload, *with_settings], turn_outputs, api_name=False, **stream
        )
        for label, request in BUTTON_REQUESTS.items():
            quick[label].click(says(request), with_settings, turn_outputs, api_name=False, **stream)
        extend.click(
            on_extend, [direction, pixels, *with_settings], turn_outputs, api_name=False, **stream
        )
        repaint.click(
            on_repaint, [region, brush, *with_settings], turn_outputs, api_name="repaint", **stream
        )
        cancel.click(on_cancel, [session_id], [], api_name=False, concurrency_limit=None)
        gallery.select(
            on_select, [session_id], [image, details_box, brush, gallery], api_name=False
        )
        image.change(lambda path: path, [image], [brush], api_name=False)
        earlier.input(
            on_switch,
            [earlier, session_id],
            [*view, session_id, remembered, *settings],
            api_name=False,
        )
        fresh.click(on_new, None, load_outputs, api_name=False)
        for widget in settings:
            widget.input(
                on_settings,
                [session_id, remembered, *settings],
                [settings_note, session_id, remembered],
                api_name=False,
            )
        autoplay.change(lambda on: gr.update(autoplay=on), [autoplay], [speech], api_name=False)

        with gr.Tab("Whisper → Stable Diffusion demo", id="demo-tab"):
            build_demo_tab(controller, sessions, session_id)
    return app


def build_demo_tab(controller: Controller, sessions: ChatSessions, session_id) -> None:
    """Speak in any language; check (and edit) the transcript first, or go straight to a picture.

    Whisper's translate task turns the speech into English; the prompt used is shown. The
    "I speak" setting of the chat tab names the spoken language (else it is detected).
    """
    import gradio as gr

    gr.Markdown(
        "Speak a picture in **any language**. Whisper translates it to English, the "
        "assistant writes the prompt, and Stable Diffusion draws it."
    )
    with gr.Row():
        with gr.Column():
            speech_in = gr.Audio(
                sources=["microphone", "upload"],
                type="filepath",
                label="Speech",
                elem_id="demo-audio",
            )
            mode = gr.Radio(
                ["Check the transcript first", "Straight to image"],
                value="Check the transcript first",
                label="Mode",
                elem_id="demo-mode",
            )
            listen = gr.Button("Transcribe", variant="primary", elem_id="demo-listen")
            transcript = gr.Textbox(
                label="Transcript (as heard)", interactive=False, elem_id="demo-transcript"
            )
            english = gr.Textbox(label="English (edit it, then generate)", elem_id="demo-english")
            make = gr.Button("Generate", elem_id="demo-generate")
        with gr.Column():
            picture = gr.Image(
                label="Picture", type="filepath", interactive=False, elem_id="demo-image"
            )
            prompt_used = gr.Markdown(elem_id="demo-prompt")

    def hear(audio_path, sid):
        if not audio_path:
            return "", "", "Record or upload some speech first."
        tab = sessions.get(sid)
        try:
            heard = controller.hear(audio_path, tab.session.settings.speech_language)
        except Exception as e:  # AssistantError / VoiceError carry a code for people
            return "", "", f"⚠️ `{getattr(e, 'code', 'asr-failed')}`: {getattr(e, 'message', e)}"
        return f"[{heard.language}] {heard.heard}", heard.text, ""

    def draw(text_value, sid):
        tab = sessions.get(sid)
        path, used = None, ""
        for event in controller.run_turn(tab.session, UserInput(text=text_value)):
            if event.type == EventType.PLAN and event.data.get("prompt"):
                used = (
                    f"**Prompt:** {event.data['prompt']}\n\n"
                    f"**Negative:** {event.data['negative_prompt']}"
                )
            elif event.type == EventType.IMAGE_DONE and event.data.get("path"):
                path = event.data["path"]
            elif event.type == EventType.ERROR:
                used = f"⚠️ `{event.data['code']}`: {event.data['message']}"
        return path, used, tab.session.id

    def hear_then_maybe_draw(audio_path, mode_value, sid):
        said, english_text, problem = hear(audio_path, sid)
        if problem or mode_value != "Straight to image":
            return said, english_text, None, problem, sid
        path, used, sid = draw(english_text, sid)
        return said, english_text, path, used, sid

    listen.click(
        hear_then_maybe_draw,
        [speech_in, mode, session_id],
        [transcript, english, picture, prompt_used, session_id],
        api_name="demo_listen",
        concurrency_id="gpu",
    )
    make.click(
        draw,
        [english, session_id],
        [picture, prompt_used, session_id],
        api_name="demo_generate",
        concurrency_id="gpu",
    )


# --- launching -----------------------------------------------------------------------------
def logins(config: Config, environ: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(user, password) pairs from ui.auth, else from ASSISTANT_UI_AUTH."""
    environ = os.environ if environ is None else environ
    entries = list(config.ui.auth) or [x for x in environ.get(AUTH_ENV, "").split(",") if x.strip()]
    pairs = []
    for entry in entries:
        user, sep, password = entry.strip().partition(":")
        if not sep or not user or not password:
            raise ConfigError(
                f"ui.auth entries are 'user:password'; got {entry.strip()!r} "
                f"(in config.yaml ui.auth or {AUTH_ENV})."
            )
        pairs.append((user, password))
    return pairs


def check_exposure(config: Config, share: bool, environ: dict[str, str] | None = None):
    """The logins to require; refuses a window reachable beyond this machine without one."""
    pairs = logins(config, environ)
    exposed = share or config.ui.host not in LOCAL_HOSTS
    if exposed and not pairs:
        where = "shared with --share" if share else f"listening on {config.ui.host}"
        raise ConfigError(
            f"The chat window would be {where} without a login. Set ui.auth to "
            f'["user:password"] in config.yaml, or {AUTH_ENV}="user:password", '
            "or keep ui.host at 127.0.0.1 without --share."
        )
    return pairs or None


def launch(config: Config, share: bool = False) -> int:
    """Load the models once, then serve the chat window until interrupted."""
    from assistant.build import build_controller

    share = share or config.ui.share
    try:
        auth = check_exposure(config, share)  # before loading anything: a refusal is quick
    except ConfigError as e:
        sys.exit(f"error: {e}")
    controller, report = build_controller(config)
    app = build_app(controller, report.notices)
    logger.info("Chat window on http://%s:%s", config.ui.host, config.ui.port)
    app.queue(default_concurrency_limit=1).launch(
        server_name=config.ui.host,
        server_port=config.ui.port,
        share=share,
        auth=auth,
        allowed_paths=[str(config.output_dir.expanduser().resolve())],
    )
    return 0
