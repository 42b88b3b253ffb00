"""The chat window (gradio): type or record a request, see the image form, read and hear the reply.

Each browser tab has its own session (``gr.State``); every tab renders the controller's events.
Importing this module builds nothing heavy: ``build_app`` takes a ready Controller.
"""

# No `from __future__ import annotations`: gradio reads the real `gr.SelectData` annotation.
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from assistant.config import Config
from assistant.controller import Controller, Session, UserInput
from assistant.events import EventType

logger = logging.getLogger(__name__)

TITLE = "Voice & chat image assistant"
MAX_TABS = 200  # sessions kept in memory; the oldest tab beyond this starts afresh


class TabState:
    """What one browser tab holds: its session and the cancel switch of its running turn."""

    def __init__(self, controller: Controller):
        self.session: Session = controller.new_session()
        self.cancel = threading.Event()


class TabRegistry:
    """Server-side tab states, keyed by an id that gr.State carries (gr.State deep-copies its
    value, and a session holds locks and events that cannot be copied)."""

    def __init__(self, controller: Controller):
        self.controller = controller
        self._tabs: OrderedDict[str, TabState] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, tab_id: str | None) -> tuple[str, TabState]:
        with self._lock:
            if tab_id not in self._tabs:
                tab_id = uuid.uuid4().hex
                self._tabs[tab_id] = TabState(self.controller)
                while len(self._tabs) > MAX_TABS:
                    self._tabs.popitem(last=False)
            self._tabs.move_to_end(tab_id)
            return tab_id, self._tabs[tab_id]


def _gallery(session: Session) -> list[tuple[str, str]]:
    return [(n.path, f"{n.id}: {n.prompt[:60]}") for n in session.state.nodes.values()]


def _details(session: Session) -> str:
    node = session.state.current
    if node is None:
        return "*No picture yet.*"
    parent = f" · edited from {node.parent_id}" if node.parent_id else ""
    return (
        f"**{node.id}** · {node.operation}{parent} · seed `{node.seed}` · {node.steps} steps · "
        f"guidance {node.guidance:g}\n\n**Prompt:** {node.prompt}\n\n"
        f"**Negative:** {node.negative_prompt or '—'}"
    )


def run_chat_turn(
    controller: Controller, tab: TabState, text: str | None, audio: Any, history: list[dict]
) -> Iterator[tuple]:
    """Drive one turn and yield (history, image, status, audio path, details, gallery) updates."""
    tab.cancel = threading.Event()
    session = tab.session
    user_text = (text or "").strip()
    history = list(history or [])
    history.append({"role": "user", "content": user_text or "🎤 (spoken request)"})
    image = session.state.current.path if session.state.current else None
    status, speech = "Working…", None
    yield history, image, status, speech, _details(session), _gallery(session)
    user_input = UserInput(
        text=user_text, audio=audio if audio is not None and not user_text else None
    )
    for event in controller.run_turn(session, user_input, cancel=tab.cancel):
        d = event.data
        if event.type == EventType.ASR_END:
            history[-1] = {"role": "user", "content": f"🎤 {d['text']}"}
        elif event.type == EventType.PLAN and d.get("prompt"):
            status = f"Drawing: *{d['prompt']}*"
        elif event.type == EventType.IMAGE_PROGRESS:
            status = f"Step {d['step']} of {d['total']}"
            if d.get("preview") is not None:
                image = d["preview"]
        elif event.type == EventType.IMAGE_DONE:
            image = d.get("path") or d.get("image")  # the saved PNG carries its settings
            status = ""
        elif event.type == EventType.ERROR:
            status = f"⚠️ `{d['code']}`: {d['message']}"
        elif event.type == EventType.REPLY:
            history.append({"role": "assistant", "content": d["text"]})
        elif event.type == EventType.TTS_END:
            speech = d.get("path")
        else:
            continue
        yield history, image, status, speech, _details(session), _gallery(session)


def build_app(controller: Controller, notices: list[str] | None = None):
    """The gradio Blocks app around a ready controller."""
    import gradio as gr

    tabs = TabRegistry(controller)
    with gr.Blocks(title=TITLE) as app:
        tab = gr.State(None)  # this tab's id in `tabs`
        gr.Markdown(
            f"## {TITLE}\nSay or type what to draw, then ask for changes: "
            "*make it darker*, *again*, *undo*, *what prompt did you use?*"
        )
        for notice in notices or []:
            gr.Markdown(f"> ⚠️ **Placeholder pictures.** {notice}", elem_id="notice")
        with gr.Row():
            with gr.Column(scale=1):
                chat = gr.Chatbot(label="Conversation", height=420, elem_id="chat")
                text = gr.Textbox(
                    placeholder="Draw a lighthouse on a cliff at night",
                    label="Request",
                    elem_id="request",
                )
                mic = gr.Audio(
                    sources=["microphone", "upload"],
                    type="filepath",
                    label="…or speak",
                    elem_id="mic",
                )
                with gr.Row():
                    send = gr.Button("Send", variant="primary", elem_id="send")
                    cancel = gr.Button("Cancel", elem_id="cancel")
                speech = gr.Audio(
                    label="Spoken reply", autoplay=True, interactive=False, elem_id="speech"
                )
            with gr.Column(scale=1):
                image = gr.Image(
                    label="Current picture",
                    type="filepath",
                    height=420,
                    interactive=False,
                    elem_id="image",
                )
                status = gr.Markdown(elem_id="status")
                details = gr.Markdown("*No picture yet.*", elem_id="details")
                gallery = gr.Gallery(
                    label="History (click to go back)", columns=6, height=140, elem_id="history"
                )

        outputs = [chat, image, status, speech, details, gallery, tab]

        def on_send(text_value, audio_value, history, tab_id):
            tab_id, tab_state = tabs.get(tab_id)
            for update in run_chat_turn(controller, tab_state, text_value, audio_value, history):
                yield *update, tab_id

        def on_select(tab_id: str, evt: gr.SelectData):
            tab_id, tab_state = tabs.get(tab_id)
            session = tab_state.session
            node = session.state.select(list(session.state.nodes)[evt.index])
            return node.path, _details(session)

        def on_cancel(tab_id: str):
            tabs.get(tab_id)[1].cancel.set()
            return "Cancelling…"

        send.click(on_send, [text, mic, chat, tab], outputs, api_name="send").then(
            lambda: ("", None), None, [text, mic], api_name=False
        )
        text.submit(on_send, [text, mic, chat, tab], outputs, api_name=False).then(
            lambda: ("", None), None, [text, mic], api_name=False
        )
        mic.stop_recording(on_send, [text, mic, chat, tab], outputs, api_name=False)
        cancel.click(on_cancel, [tab], [status], api_name=False)
        gallery.select(on_select, [tab], [image, details], api_name=False)
    return app


def launch(config: Config, share: bool = False) -> int:
    """Load the models once, then serve the chat window until interrupted."""
    from assistant.build import build_controller

    controller, report = build_controller(config)
    app = build_app(controller, report.notices)
    logger.info("Chat window on http://%s:%s", config.ui.host, config.ui.port)
    app.queue(default_concurrency_limit=4).launch(
        server_name=config.ui.host,
        server_port=config.ui.port,
        share=share,
        allowed_paths=[str(config.output_dir.resolve())],
    )
    return 0
