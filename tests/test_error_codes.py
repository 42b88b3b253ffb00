"""Every stable error code the source can produce is listed, with its meaning, in
``assistant.errors.ERROR_CODES`` (stages) or ``frontends.api_errors.API_ERROR_CODES`` (HTTP).

The source is read, not run: a code passed to an error class (``VoiceError("asr-cancelled",
...)``, ``ApiError(code="...")``, ``super().__init__("request-timeout", ...)``), a ``code =
"..."`` assignment or class attribute, an event's ``{"code": "..."}``, the default of
``getattr(e, "code", "...")`` and a status-to-code table all count. Adding a code without
listing it fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("assistant", "voice", "pipelines", "frontends", "common")
CODE = re.compile(r"^[a-z]+(?:-[a-z]+)*$")  # "asr-no-speech", "unauthorized"
HTTP_STATUSES = range(100, 600)


def _code(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.match(node.value):
        return node.value
    return None


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def codes_in(source: str) -> set[str]:
    """The error codes a piece of Python source produces (see the module docstring)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = _callee(node)
            if name.endswith("Error") or name in ("error_response", "error_json", "__init__"):
                found.update(c for c in map(_code, node.args[:1]) if c)
            found.update(c for k in node.keywords if k.arg == "code" and (c := _code(k.value)))
            if name == "getattr" and len(node.args) == 3:
                attr, default = node.args[1], _code(node.args[2])
                if isinstance(attr, ast.Constant) and attr.value == "code" and default:
                    found.add(default)
        elif isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if "code" in targets and (c := _code(node.value)):
                found.add(c)
        elif isinstance(node, ast.Dict):
            keys = node.keys
            for key, value in zip(keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "code" and (c := _code(value)):
                    found.add(c)
            # {404: "not-found", ...}: which code an HTTP status becomes.
            if keys and all(isinstance(k, ast.Constant) and k.value in HTTP_STATUSES for k in keys):
                found.update(c for c in map(_code, node.values) if c)
    return found


def source_files() -> list[Path]:
    files = [REPO / "run_assistant.py"]
    for folder in SOURCE_DIRS:
        files += sorted((REPO / folder).rglob("*.py"))
    return files


@pytest.fixture(scope="module")
def produced() -> dict[str, list[str]]:
    """code -> the files that produce it."""
    where: dict[str, list[str]] = {}
    for path in source_files():
        for code in codes_in(path.read_text()):
            where.setdefault(code, []).append(str(path.relative_to(REPO)))
    return where


def listed() -> dict[str, str]:
    from assistant.errors import ERROR_CODES
    from frontends.api_errors import API_ERROR_CODES

    return {**ERROR_CODES, **API_ERROR_CODES}


def test_the_reader_finds_codes_in_every_form_the_source_uses():
    source = """
class Refusal(ValueError):
    code = "made-up-class"
def f(e):
    VoiceError("made-up-call", "x")
    ApiError(code="made-up-keyword", message="x")
    super().__init__("made-up-super", "x")
    code = "made-up-assign"
    event = {"code": "made-up-event", "message": "x"}
    getattr(e, "code", "made-up-default")
    by_status = {404: "made-up-status"}
    ApiError("unauthorized", "x")
    print("not-a-code")  # a plain call's words are not codes
    numbers = {1: "one", 2: "two"}  # nor a table that is not by HTTP status
"""
    assert codes_in(source) == {
        "made-up-class",
        "made-up-call",
        "made-up-keyword",
        "made-up-super",
        "made-up-assign",
        "made-up-event",
        "made-up-default",
        "made-up-status",
        "unauthorized",
    }


def test_every_code_raised_anywhere_is_listed_with_its_meaning(produced):
    # Known codes of each form are found, so an empty scan cannot pass.
    for code in (
        "asr-cancelled",
        "image-too-large",
        "request-timeout",
        "not-found",
        "unauthorized",
    ):
        assert code in produced, code
    table = listed()
    unlisted = {code: files for code, files in produced.items() if code not in table}
    assert not unlisted, f"codes raised but not in ERROR_CODES / API_ERROR_CODES: {unlisted}"
    assert all(meaning.strip() for meaning in table.values())


def test_every_listed_code_can_happen(produced):
    never = sorted(set(listed()) - set(produced))
    assert not never, f"listed codes that nothing produces (remove or raise them): {never}"


def test_the_two_tables_do_not_overlap_and_every_status_is_for_a_listed_code():
    from assistant.errors import ERROR_CODES
    from frontends.api_errors import API_ERROR_CODES, STATUS_BY_CODE

    assert not set(ERROR_CODES) & set(API_ERROR_CODES)
    assert set(STATUS_BY_CODE) <= set(listed())
    for code in ("image-too-large", "asr-cancelled", "budget-exceeded", "config-invalid"):
        assert code in ERROR_CODES, code
