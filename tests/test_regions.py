"""Changing one described part of the picture: parsing what was said, and position masks."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.plan import Intent
from assistant.region_requests import parse_region_request
from assistant.rewrite import PromptRewriter, RuleRewriter
from assistant.state import DialogueState
from assistant.understand import understand
from pipelines.regions import known_positions, position_mask, position_of
from tests.states import with_picture


@pytest.mark.parametrize(
    ("said", "region", "change", "is_position"),
    [
        ("replace the sky with a sunset", "sky", "a sunset", False),
        ("add a moon in the top right corner", "top right corner", "a moon", True),
        ("put a boat in the middle", "middle", "a boat", True),
        ("make only the sky red", "sky", "red sky", False),
        ("make just the upper half darker", "top half", "darker", True),
        ("repaint the bottom half as a lake", "bottom half", "a lake", True),
        ("fill the left side with trees", "left side", "trees", True),
        ("change only the red car to blue", "red car", "blue", False),
    ],
)
def test_the_region_and_the_change_are_found(said, region, change, is_position):
    request = parse_region_request(said)
    assert (request.region, request.change, request.is_position) == (region, change, is_position)


@pytest.mark.parametrize(
    "said",
    [
        "make the sky stormier",  # the whole picture: an edit, not a region
        "add a hat on the dog",  # "on the dog" is where, not what to replace
        "draw a lighthouse on a cliff at night",
        "redo",
        "replace it with a dog",
    ],
)
def test_requests_without_a_region_are_left_alone(said):
    assert parse_region_request(said) is None


@pytest.mark.parametrize(
    ("phrase", "box"),
    [
        ("the top right corner", (0.5, 0.0, 1.0, 0.5)),
        ("upper half", (0.0, 0.0, 1.0, 0.5)),
        ("the middle", (0.25, 0.25, 0.75, 0.75)),
        ("left", (0.0, 0.0, 0.4, 1.0)),
    ],
)
def test_position_masks_cover_exactly_their_box(phrase, box):
    mask = np.asarray(position_mask((200, 100), phrase)) > 0
    rows, cols = np.nonzero(mask)
    assert mask.shape == (100, 200)
    assert (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == (
        round(box[0] * 200),
        round(box[1] * 100),
        round(box[2] * 200),
        round(box[3] * 100),
    )
    assert mask.sum() == (cols.max() + 1 - cols.min()) * (rows.max() + 1 - rows.min())


def test_every_position_has_a_name_that_resolves_to_itself():
    assert all(position_of(p) == p for p in known_positions())
    assert position_of("the sky") is None


def test_a_region_request_is_an_inpaint_of_the_current_picture():
    rewriter = PromptRewriter(RuleRewriter(["highly detailed"], ["blurry"]))
    plan = understand(
        "Add a moon in the top right corner",
        with_picture("a lighthouse on a cliff at night"),
        rewriter,
    )
    assert plan.intent == Intent.INPAINT and plan.operation == "inpaint"
    assert plan.region == "top right corner" and plan.target_id == "n1"
    assert "moon" in plan.prompt and "lighthouse" in plan.prompt

    empty = understand("replace the sky with a sunset", DialogueState(), rewriter)
    assert empty.intent == Intent.CLARIFY  # no picture yet to change
