"""Dialogue states for tests that need a picture in view without drawing one."""

from __future__ import annotations

from assistant.state import DialogueState, ImageNode


def with_picture(prompt: str = "a red barn in a field, highly detailed") -> DialogueState:
    """A state whose current picture is node n1 (64x64), made from ``prompt``."""
    state = DialogueState()
    state.add_node(
        ImageNode(
            id="n1",
            parent_id=None,
            operation="generate",
            prompt=prompt,
            negative_prompt="",
            seed=1,
            steps=1,
            guidance=0.0,
            strength=None,
            width=64,
            height=64,
            model="m",
            path="/x.png",
            request=f"draw {prompt}",
        )
    )
    return state
