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

import numpy as np

from assistant.config import Config
from assistant.controller import Controller, Session, UserInput
from assistant.events import EventType
from assistant.i18n import reply_languages
from assistant.language import language_name

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
    controller: Controller, tab: TabState, user_input: UserInput, history: list[dict]
) -> Iterator[tuple]:
    """Drive one turn and yield (history, image, status, audio path, details, gallery) updates."""
    tab.cancel = threading.Event()
    session = tab.session
    history = list(history or [])
    history.append({"role": "user", "content": user_input.text or "🎤 (spoken request)"})
    image = session.state.current.path if session.state.current else None
    status, speech = "Working…", None
    yield history, image, status, speech, _details(session), _gallery(session)
    for event in controller.run_turn(session, user_input, cancel=tab.cancel):
        d = event.data
        if event.type == EventType.ASR_END:
            heard = d.get("heard") or d["text"]
            shown = heard if heard == d["text"] else f"{heard}\n\n*(read as: {d['text']})*"
            history[-1] = {"role": "user", "content": f"🎤 {shown}"}
        elif event.type == EventType.TRANSLATION:
            history[-1] = {
                "role": "user",
                "content": f"{d['source_text']}\n\n*(read as: {d['text']})*",
            }
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


def image_model_choices(controller: Controller) -> list[str]:
    """The image models a tab may switch to: those already loaded, then the usual ones."""
    loaded = controller.image_models.loaded() if controller.image_models is not None else []
    usual = [
        "random:tiny",
        "random:small",
        "random:sd-turbo",
        "stabilityai/sd-turbo",
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
    ]
    return ["default", *dict.fromkeys(loaded + usual)]


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

    tabs = TabRegistry(controller)
    with gr.Blocks(title=TITLE) as app:
        tab = gr.State(None)  # this tab's id in `tabs`
        gr.Markdown(
            f"## {TITLE}\nSay or type what to draw, then ask for changes: "
            "*make it darker*, *again*, *extend it to the left*, *undo*, "
            "*what prompt did you use?*"
        )
        for notice in notices or []:
            gr.Markdown(f"> ⚠️ **Placeholder pictures.** {notice}", elem_id="notice")
        with gr.Tab("Chat", id="chat-tab"):
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
                    with gr.Accordion("Start from a photo", open=False):
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
                    with gr.Accordion("Settings (this tab)", open=False):
                        steps = gr.Slider(0, 50, value=0, step=1, label="Steps (0 = model default)")
                        guidance = gr.Slider(
                            -0.5,
                            15,
                            value=-0.5,
                            step=0.5,
                            label="Guidance (below 0 = model default)",
                        )
                        size = gr.Dropdown(
                            [
                                "model default",
                                "256x256",
                                "512x512",
                                "768x768",
                                "512x768",
                                "768x512",
                                "1024x1024",
                            ],
                            value="model default",
                            label="Size",
                        )
                        seed = gr.Number(-1, precision=0, label="Seed (-1 = random)")
                        strength = gr.Slider(
                            0.05,
                            1.0,
                            value=controller.defaults.edit_strength,
                            step=0.05,
                            label="Edit strength",
                        )
                        style = gr.Dropdown(
                            ["none", *controller.rewriter.styles],
                            value="none",
                            label="Style for new pictures",
                        )
                        model_choice = gr.Dropdown(
                            image_model_choices(controller),
                            value="default",
                            label="Image model (loaded on first use)",
                            allow_custom_value=True,
                        )
                        voice_choice = gr.Dropdown(
                            ["default", "hibari", "piper", "espeak", "coqui"],
                            value="default",
                            label="Voice",
                            allow_custom_value=True,
                        )
                        reply_language = gr.Dropdown(
                            reply_language_choices(),
                            value="auto",
                            label="Reply language",
                        )
                        raw = gr.Checkbox(False, label="Raw mode: use my words as the prompt")
                        autoplay = gr.Checkbox(True, label="Speak replies")

        outputs = [chat, image, status, speech, details, gallery, tab]

        def turn(tab_id, history, user_input):
            tab_id, tab_state = tabs.get(tab_id)
            for update in run_chat_turn(controller, tab_state, user_input, history):
                yield *update, tab_id

        def on_send(text_value, audio_value, upload_value, history, tab_id):
            yield from turn(tab_id, history, make_input(text_value, audio_value, upload_value))

        def on_repaint(region_text, editor_value, history, tab_id):
            # With strokes this repaints them; with none it is an ordinary edit of the picture.
            yield from turn(tab_id, history, make_input(region_text, editor=editor_value))

        def says(request: str):
            def handler(history, tab_id):
                yield from turn(tab_id, history, UserInput(request))

            return handler

        def on_extend(direction_value, pixels_value, history, tab_id):
            request = f"extend it {direction_value} by {int(pixels_value)} px"
            yield from turn(tab_id, history, UserInput(request))

        def on_select(tab_id: str, evt: gr.SelectData):
            tab_id, tab_state = tabs.get(tab_id)
            session = tab_state.session
            node = session.state.select(list(session.state.nodes)[evt.index])
            return node.path, _details(session), node.path

        def on_cancel(tab_id: str):
            tabs.get(tab_id)[1].cancel.set()
            return "Cancelling…"

        def on_settings(
            tab_id,
            steps_v,
            guidance_v,
            size_v,
            seed_v,
            strength_v,
            style_v,
            raw_v,
            model_v,
            voice_v,
            reply_language_v,
        ):
            tab_id, tab_state = tabs.get(tab_id)
            chosen: dict[str, Any] = {
                "steps": int(steps_v) or None,
                "guidance": guidance_v if guidance_v >= 0 else None,
                "seed": int(seed_v) if seed_v is not None else -1,
                "edit_strength": float(strength_v),
                "raw": bool(raw_v),
                "style": None if style_v == "none" else style_v,
                "image_model": None if model_v == "default" else model_v,
                "voice": None if voice_v == "default" else voice_v,
                "reply_language": None if reply_language_v == "auto" else reply_language_v,
            }
            if size_v != "model default":
                width, height = (int(x) for x in size_v.split("x"))
                chosen.update(width=width, height=height)
            tab_state.session.settings = {k: v for k, v in chosen.items() if v is not None}
            return tab_id

        inputs = [text, mic, upload, chat, tab]
        # One image job at a time: gradio's queue shows each tab its place in line.
        send.click(
            on_send, inputs, outputs, api_name="send", concurrency_limit=1, concurrency_id="gpu"
        ).then(lambda: ("", None), None, [text, mic], api_name=False)
        text.submit(
            on_send, inputs, outputs, api_name=False, concurrency_limit=1, concurrency_id="gpu"
        ).then(lambda: ("", None), None, [text, mic], api_name=False)
        mic.stop_recording(
            on_send, inputs, outputs, api_name=False, concurrency_limit=1, concurrency_id="gpu"
        )
        for label, request in BUTTON_REQUESTS.items():
            quick[label].click(
                says(request), [chat, tab], outputs, api_name=False, concurrency_id="gpu"
            )
        extend.click(
            on_extend, [direction, pixels, chat, tab], outputs, api_name=False, concurrency_id="gpu"
        )
        repaint.click(
            on_repaint,
            [region, brush, chat, tab],
            outputs,
            api_name="repaint",
            concurrency_id="gpu",
        )
        cancel.click(on_cancel, [tab], [status], api_name=False)
        gallery.select(on_select, [tab], [image, details, brush], api_name=False)
        image.change(lambda path: path, [image], [brush], api_name=False)
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
        ]
        for widget in settings:
            widget.change(on_settings, [tab, *settings], [tab], api_name=False)
        autoplay.change(lambda on: gr.update(autoplay=on), [autoplay], [speech], api_name=False)

        with gr.Tab("Whisper → Stable Diffusion demo", id="demo-tab"):
            build_demo_tab(controller, tabs, tab)
    return app


def build_demo_tab(controller: Controller, tabs: TabRegistry, tab) -> None:
    """Speak in any language; check (and edit) the transcript first, or go straight to a picture.

    Whisper's translate task turns the speech into English; the prompt used is shown.
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

    def hear(audio_path):
        if controller.asr is None or not audio_path:
            return "", "", "Record or upload some speech first."
        try:
            heard = controller.asr.transcribe(audio_path)
            translated = (
                controller.asr.transcribe(audio_path, task="translate")
                if heard.language != "en"
                else heard
            )
        except Exception as e:  # a VoiceError carries a code and a message for people
            return "", "", f"⚠️ `{getattr(e, 'code', 'asr-failed')}`: {e}"
        return f"[{heard.language}] {heard.text}", translated.text, ""

    def draw(text_value, tab_id):
        tab_id, tab_state = tabs.get(tab_id)
        path, used = None, ""
        for event in controller.run_turn(tab_state.session, UserInput(text=text_value)):
            if event.type == EventType.PLAN and event.data.get("prompt"):
                used = (
                    f"**Prompt:** {event.data['prompt']}\n\n"
                    f"**Negative:** {event.data['negative_prompt']}"
                )
            elif event.type == EventType.IMAGE_DONE and event.data.get("path"):
                path = event.data["path"]
            elif event.type == EventType.ERROR:
                used = f"⚠️ `{event.data['code']}`: {event.data['message']}"
        return path, used, tab_id

    def hear_then_maybe_draw(audio_path, mode_value, tab_id):
        said, english_text, problem = hear(audio_path)
        if problem or mode_value != "Straight to image":
            return said, english_text, None, problem, tab_id
        path, used, tab_id = draw(english_text, tab_id)
        return said, english_text, path, used, tab_id

    listen.click(
        hear_then_maybe_draw,
        [speech_in, mode, tab],
        [transcript, english, picture, prompt_used, tab],
        api_name="demo_listen",
        concurrency_id="gpu",
    )
    make.click(
        draw,
        [english, tab],
        [picture, prompt_used, tab],
        api_name="demo_generate",
        concurrency_id="gpu",
    )


def launch(config: Config, share: bool = False) -> int:
    """Load the models once, then serve the chat window until interrupted."""
    from assistant.build import build_controller

    controller, report = build_controller(config)
    app = build_app(controller, report.notices)
    logger.info("Chat window on http://%s:%s", config.ui.host, config.ui.port)
    app.queue(default_concurrency_limit=1).launch(
        server_name=config.ui.host,
        server_port=config.ui.port,
        share=share,
        allowed_paths=[str(config.output_dir.expanduser().resolve())],
    )
    return 0
