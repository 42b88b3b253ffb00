"""Configuration: the file, profiles, env vars and flags, and teaching errors for bad values."""

import pytest

from assistant.config import ConfigError, load_config, parse_override


def test_default_is_the_offline_profile_with_packaged_models():
    config = load_config(environ={})
    assert config.profile == "offline"
    assert config.asr.model == "packaged:base"
    assert config.rewrite.llm == "packaged:qwen2.5-coder-0.5b"
    assert config.image.model.startswith("random:")
    assert config.tts.engine == "hibari"


def test_profile_block_overrides_sections():
    tiny = load_config(profile="tiny", environ={})
    assert tiny.image.model == "random:tiny" and tiny.image.width == 64
    assert tiny.rewrite.llm == "none"
    hub = load_config(profile="hub", environ={})
    assert hub.image.model == "stabilityai/sd-turbo"
    assert hub.tts.engine == "coqui"


def test_env_overrides_file_and_flags_override_env():
    env = {"ASSISTANT_PROFILE": "tiny", "ASSISTANT__IMAGE__STEPS": "3"}
    assert load_config(environ=env).image.steps == 3
    config = load_config(environ=env, overrides=[parse_override("image.steps=5")])
    assert config.profile == "tiny" and config.image.steps == 5
    # A local path is accepted in any model slot.
    config = load_config(environ={}, overrides=[parse_override("image.model=/models/my-sd")])
    assert config.image.model == "/models/my-sd"


@pytest.mark.parametrize(
    ("override", "must_mention"),
    [
        ("tts.engine=festival", ["tts.engine", "hibari", "piper", "coqui", "espeak"]),
        ("image.width=500", ["image.width", "multiple of 8"]),
        ("image.steps=0", ["image.steps", "greater than or equal to 1"]),
        ("image.edit_strength=1.5", ["image.edit_strength"]),
        ("device=tpu", ["device", "cuda"]),
        ("image.colour=red", ["image.colour", "not permitted"]),
    ],
)
def test_wrong_value_names_the_key_and_what_is_allowed(override, must_mention):
    with pytest.raises(ConfigError) as info:
        load_config(environ={}, overrides=[parse_override(override)])
    for text in must_mention:
        assert text in str(info.value)


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(ConfigError, match="offline.*tiny"):
        load_config(profile="huge", environ={})


def test_override_needs_key_equals_value():
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("image.steps")
