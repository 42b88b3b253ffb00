"""Prompt weighting and long prompts, settings from PNGs, the safety check and the watermark.

All on the tiny random pipeline (64x64, 1-2 steps) or tiny random models; nothing from a hub.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipelines.errors import ImageError

SIZE = 64  # pixels
STEPS = 1
LONG_PROMPT = "a red fox in the snow, " * 28 + "under a full moon"  # 200 CLIP tokens


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from pipelines.image_engine import ImageEngine

    cache = tmp_path_factory.mktemp("tokenizer")
    return ImageEngine.from_model("random:tiny", device="cpu", tokenizer_cache=cache)


def request(**overrides):
    from pipelines.image_engine import ImageRequest

    values = {"prompt": "a red fox", "seed": 7, "steps": STEPS, "width": SIZE, "height": SIZE}
    return ImageRequest(**{**values, **overrides})


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def sibling(engine, **kwargs):
    """Another engine on the same loaded pipeline, with extra settings."""
    from pipelines.image_engine import ImageEngine

    return ImageEngine(engine.pipe, engine.info, **kwargs)


def test_image(size=(256, 256)) -> Image.Image:
    """A photo-like RGB picture: gradients plus seeded noise."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    rgb = np.stack([x % 256, y % 256, (x + y) % 256], axis=-1)
    rgb = rgb + rng.integers(-20, 20, rgb.shape)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


test_image.__test__ = False  # a helper, not a test


# -- prompt weighting ------------------------------------------------------------------------

W = 1.1
PARSE_CASES = [
    ("a red fox", [("a red fox", 1.0)]),
    ("a (red:1.3) fox", [("a ", 1.0), ("red", 1.3), (" fox", 1.0)]),
    ("(red)", [("red", W)]),
    ("((red))", [("red", W * W)]),
    ("[red]", [("red", 1 / W)]),
    ("[[red]]", [("red", 1 / W / W)]),
    ("(a (b:2) c)", [("a ", W), ("b", 2 * W), (" c", W)]),
    ("(red : 0.5 ) fox", [("red ", 0.5), (" fox", 1.0)]),
    (r"\(literal\) [x]", [("(literal) ", 1.0), ("x", 1 / W)]),
    (r"a \\ b", [("a \\ b", 1.0)]),
    # unbalanced brackets stay in the text as typed
    ("a (red fox", [("a (red fox", 1.0)]),
    ("a red) fox", [("a red) fox", 1.0)]),
    ("((red)", [("(", 1.0), ("red", W)]),
    ("[x", [("[x", 1.0)]),
    ("(x:.)", [("(x:.)", 1.0)]),
    ("time: 5 o'clock", [("time: 5 o'clock", 1.0)]),
    ("", [("", 1.0)]),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES)
def test_weights_parse(text, expected):
    from pipelines.prompt_weighting import parse_prompt_attention

    chunks = parse_prompt_attention(text)
    assert [t for t, _ in chunks] == [t for t, _ in expected]
    assert [w for _, w in chunks] == pytest.approx([w for _, w in expected])


def test_plain_prompt_embeddings_equal_the_pipeline_own(engine):
    from pipelines.prompt_weighting import encode_prompt, plan_prompt

    pipe = engine.pipe
    prompt, negative = "a photo of a cat, 4k", "blurry"
    assert plan_prompt(pipe.tokenizer, prompt, negative).plain
    theirs = pipe.encode_prompt(prompt, "cpu", 1, True, negative)
    ours = encode_prompt(pipe, prompt, negative, "cpu")
    assert ours[0].shape == (1, 77, pipe.text_encoder.config.hidden_size)
    assert torch_equal(ours[0], theirs[0]) and torch_equal(ours[1], theirs[1])


def torch_equal(a, b) -> bool:
    import torch

    return a.shape == b.shape and torch.equal(a, b)


def test_weighted_prompt_changes_the_image_with_the_same_seed(engine):
    plain = engine.generate(request(prompt="a red fox, snow"))
    weighted = engine.generate(request(prompt="a (red:1.6) fox, [snow]"))
    assert plain.params["prompt_weighting"] is False and plain.params["prompt_chunks"] == 1
    assert weighted.params["prompt_weighting"] is True
    assert not np.array_equal(pixels(plain.image), pixels(weighted.image))
    again = engine.generate(request(prompt="a (red:1.6) fox, [snow]"))
    assert np.array_equal(pixels(weighted.image), pixels(again.image))


def test_long_prompt_is_not_truncated_and_generates(engine):
    from pipelines.prompt_weighting import encode_prompt, plan_prompt

    pipe = engine.pipe
    n_tokens = len(pipe.tokenizer(LONG_PROMPT, add_special_tokens=False).input_ids)
    assert n_tokens == 200  # three 75-token windows
    plan = plan_prompt(pipe.tokenizer, LONG_PROMPT, "blurry")
    assert plan.n_chunks == 3 and not plan.plain and not plan.weighted
    embeds, negative = encode_prompt(pipe, LONG_PROMPT, "blurry", "cpu")
    assert embeds.shape[1] == negative.shape[1] == 3 * 77  # negative padded to 3 windows
    # The last words reach the embedding: change them and only the last window moves.
    changed, _ = encode_prompt(pipe, LONG_PROMPT.replace("full moon", "blue sun"), "blurry", "cpu")
    assert torch_equal(changed[:, :154], embeds[:, :154])
    assert not torch_equal(changed[:, 154:], embeds[:, 154:])
    result = engine.generate(request(prompt=LONG_PROMPT))
    assert result.params["prompt_chunks"] == 3 and result.image.size == (SIZE, SIZE)


def test_long_negative_pads_the_prompt_to_the_same_windows(engine):
    from pipelines.prompt_weighting import encode_prompt

    embeds, negative = encode_prompt(engine.pipe, "a fox", LONG_PROMPT, "cpu")
    assert embeds.shape == negative.shape and embeds.shape[1] == 3 * 77


def test_unbalanced_parentheses_are_literal_not_fatal(engine):
    result = engine.generate(request(prompt="a red) fox (in [snow"))
    assert result.image.size == (SIZE, SIZE)
    assert result.params["prompt_weighting"] is False


def test_every_operation_gets_the_weighted_embeddings(engine):
    init = test_image((SIZE, SIZE))
    edited = engine.img2img(request(prompt="a (red:1.4) fox", strength=0.5), init)
    mask = Image.new("L", (SIZE, SIZE), 0)
    mask.paste(255, (16, 16, 48, 48))
    inpainted = engine.inpaint(request(prompt="(snow:1.3)"), init, mask)
    assert edited.params["prompt_weighting"] and inpainted.params["prompt_weighting"]
    # Inpainting still keeps the far-away pixels (the composite runs before postprocess).
    assert np.array_equal(pixels(inpainted.image)[0:4, 0:4], pixels(init)[0:4, 0:4])


# -- settings from PNGs ----------------------------------------------------------------------


def test_settings_round_trip_through_our_png(engine, tmp_path):
    from pipelines.metadata import a1111_text, load_settings, save_png

    result = engine.generate(request(prompt="a (red:1.2) fox", negative_prompt="blurry"))
    params = {**result.params, "sampler": "dpm++_2m_karras"}
    path = save_png(result.image, tmp_path / "fox.png", params, parent="n1")
    settings = load_settings(path)
    assert settings["source"] == "assistant" and settings["parent"] == "n1"
    for key in ("prompt", "negative_prompt", "seed", "steps", "guidance", "width", "height"):
        assert settings[key] == params[key], key
    assert settings["prompt_weighting"] is True
    assert "Sampler: DPM++ 2M Karras," in a1111_text(params)


def test_a1111_text_from_another_tool_is_parsed(tmp_path):
    from PIL.PngImagePlugin import PngInfo

    from pipelines.metadata import load_settings

    text = (
        "masterpiece, (a red fox:1.2) in the snow,\n"
        "soft light\n"
        "Negative prompt: blurry, lowres\n"
        "bad hands\n"
        "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 1234567890, "
        "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
        'Denoising strength: 0.45, Lora hashes: "fox: abc123, snow: def456", Version: v1.9.4'
    )
    info = PngInfo()
    info.add_text("parameters", text)
    path = tmp_path / "other_tool.png"
    test_image((64, 64)).save(path, pnginfo=info)
    settings = load_settings(path)
    assert settings["source"] == "a1111"
    assert settings["prompt"] == "masterpiece, (a red fox:1.2) in the snow,\nsoft light"
    assert settings["negative_prompt"] == "blurry, lowres\nbad hands"
    assert settings["steps"] == 28 and settings["guidance"] == 6.5
    assert settings["seed"] == 1234567890
    assert (settings["width"], settings["height"]) == (512, 768)
    assert settings["model"] == "v1-5-pruned-emaonly" and settings["strength"] == 0.45
    assert settings["sampler"] == "dpm++_2m_karras"
    assert settings["extra"]["Lora hashes"] == "fox: abc123, snow: def456"
    assert settings["extra"]["Model hash"] == "6ce0161689"


def test_a1111_newer_schedule_type_and_no_negative():
    from pipelines.metadata import parse_a1111_text

    settings = parse_a1111_text(
        "a cat\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 5"
    )
    assert settings["prompt"] == "a cat" and settings["negative_prompt"] == ""
    assert settings["sampler"] == "dpm++_2m_karras"
    assert parse_a1111_text("just a prompt, no settings")["prompt"] == "just a prompt, no settings"


def test_png_without_metadata_gives_no_source(tmp_path):
    from pipelines.metadata import load_settings

    path = tmp_path / "bare.png"
    test_image((64, 64)).save(path)
    assert load_settings(path) == {"source": None}


# -- safety ----------------------------------------------------------------------------------


class FakeChecker:
    def __init__(self, flag: bool):
        self.flag = flag
        self.calls = 0

    def check(self, images):
        self.calls += 1
        return [self.flag for _ in images]


def sharpness(image: Image.Image) -> float:
    """Mean absolute difference between horizontal neighbours: high for detail, low for blur."""
    return float(np.abs(np.diff(pixels(image), axis=1)).mean())


def test_flagged_image_is_blurred_and_labelled_not_blacked(engine):
    plain = engine.generate(request())
    flagged = sibling(engine, safety_checker=FakeChecker(True)).generate(request())
    assert flagged.params["nsfw"] is True and flagged.params["safety"] == "blurred"
    assert pixels(flagged.image).max() > 0  # not black
    assert sharpness(flagged.image) < 0.5 * sharpness(plain.image)


def test_unflagged_image_is_untouched(engine):
    checker = FakeChecker(False)
    plain = engine.generate(request())
    checked = sibling(engine, safety_checker=checker).generate(request())
    assert checker.calls == 1
    assert checked.params["nsfw"] is False and checked.params["safety"] == "passed"
    assert np.array_equal(pixels(plain.image), pixels(checked.image))
    assert "nsfw" not in plain.params  # off by default


def test_a_failing_checker_blurs_and_raises_nothing(engine):
    class Broken:
        def check(self, images):
            raise RuntimeError("boom")

    result = sibling(engine, safety_checker=Broken()).generate(request())
    assert result.params["safety"] == "check-failed"


def tiny_safety_checker(threshold: float):
    """A random ``StableDiffusionSafetyChecker`` whose concept thresholds decide the flag."""
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import (
        StableDiffusionSafetyChecker,
    )
    from transformers import CLIPConfig, CLIPImageProcessor

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1},
        vision_config={
            "hidden_size": 8,
            "intermediate_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=8,
    )
    model = StableDiffusionSafetyChecker(config).eval()
    with torch.no_grad():
        model.concept_embeds_weights.fill_(threshold)  # cosine (-1..1) above it flags
        model.special_care_embeds_weights.fill_(10.0)
    extractor = CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    return model, extractor


@pytest.mark.parametrize(("threshold", "flagged"), [(-10.0, True), (10.0, False)])
def test_tiny_random_safety_checker_runs_on_a_real_image(threshold, flagged):
    from pipelines.safety import SafetyChecker, apply_safety

    checker = SafetyChecker(*tiny_safety_checker(threshold))
    image = test_image()
    assert checker.check([image]) == [flagged]
    params = {}
    out = apply_safety(checker, image, params)
    assert params["nsfw"] is flagged
    assert np.array_equal(pixels(out), pixels(image)) is not flagged


def test_safety_checker_loads_from_a_local_folder(tmp_path):
    from pipelines.safety import SafetyChecker, resolve_checker

    model, extractor = tiny_safety_checker(-10.0)
    model.save_pretrained(tmp_path)
    extractor.save_pretrained(tmp_path)
    checker = resolve_checker(str(tmp_path))
    assert isinstance(checker, SafetyChecker) and checker.check([test_image()]) == [True]
    with pytest.raises(ImageError) as err:
        SafetyChecker.load(tmp_path / "missing")
    assert err.value.code == "model-missing" and err.value.__cause__ is not None


# -- watermark -------------------------------------------------------------------------------


def test_watermark_survives_png_and_is_detected():
    from pipelines.watermark import add_watermark, detect_watermark

    image = test_image((320, 256))
    marked = add_watermark(image)
    buffer = io.BytesIO()
    marked.save(buffer, format="PNG")
    buffer.seek(0)
    loaded = Image.open(buffer)
    assert detect_watermark(loaded)
    assert not detect_watermark(image)
    assert not detect_watermark(loaded, b"XXXX")
    assert np.abs(pixels(marked) - pixels(image)).mean() < 5  # invisible: small changes


def test_engine_watermark_on_and_off(engine):
    from pipelines.watermark import detect_watermark

    marked = sibling(engine, watermark=True).generate(request(width=256, height=256, steps=1))
    assert marked.params["watermark"] == "SDV2" and detect_watermark(marked.image)
    small = sibling(engine, watermark=True).generate(request(steps=1))
    assert small.params["watermark"] == "skipped: too small"
    # Off by default: the post-processing step hands back the very same image.
    image = test_image()
    params = {}
    assert engine._postprocess(image, params) is image and params == {}
