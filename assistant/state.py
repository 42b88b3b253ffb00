"""Dialogue state: the edit tree of images, which one is in focus, and what was said.

Nothing is ever deleted: undo, redo and select only move the focus.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class ImageNode:
    """One image in the edit tree, with everything needed to make it again."""

    id: str
    parent_id: str | None
    operation: str  # generate | img2img
    prompt: str
    negative_prompt: str
    seed: int
    steps: int
    guidance: float
    strength: float | None
    width: int
    height: int
    model: str
    path: str  # the PNG on disk; it carries these parameters too
    request: str  # what the person said that produced it
    placeholder: bool = False  # random weights: the picture is noise, not the request
    created: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Exchange:
    """One turn of conversation as the person saw it."""

    user: str
    reply: str
    node_id: str | None = None  # the picture in focus when the turn ended
    turn: int | None = None
    outcome: str = "ok"  # ok | failed | cancelled (the consumer left, or Cancel)
    speech: str | None = None  # the reply's WAV, a file name in the session's folder


class DialogueState:
    """Everything a session knows: the edit tree, the focus, and the conversation."""

    def __init__(self) -> None:
        self.nodes: dict[str, ImageNode] = {}
        self.focus_id: str | None = None
        self.history: list[Exchange] = []
        self.pending_question: str | None = None
        # A request heard with little confidence, waiting for "yes" (assistant/confirm.py).
        self.pending_confirmation: str | None = None
        # Node ids come from a counter that only goes up and is saved with the state: a node
        # whose file went missing (so is not loaded) never hands its id to a new picture.
        self._next_id = 1
        # Focus stacks: undo goes back to where the focus was before, redo comes forward again.
        self._back: list[str | None] = []
        self._forward: list[str | None] = []

    # --- the tree -------------------------------------------------------------------
    def reserve_node_id(self) -> str:
        """A node id never used in this session (the counter moves on even if it is dropped)."""
        while f"n{self._next_id}" in self.nodes:
            self._next_id += 1
        node_id = f"n{self._next_id}"
        self._next_id += 1
        return node_id

    def mark_used(self, node_ids: Iterable[str]) -> None:
        """Never hand out these ids again (nodes recorded once, whatever is loaded now)."""
        numbers = [int(i[1:]) for i in node_ids if i[:1] == "n" and i[1:].isdigit()]
        self._next_id = max([self._next_id, *(n + 1 for n in numbers)])

    def add_node(self, node: ImageNode) -> ImageNode:
        """Record a finished image and put it in focus (a new image clears redo)."""
        if node.id in self.nodes:
            raise ValueError(f"node {node.id} already exists")
        if node.parent_id is not None and node.parent_id not in self.nodes:
            raise ValueError(f"parent {node.parent_id} of {node.id} is unknown")
        self.nodes[node.id] = node
        self._back.append(self.focus_id)
        self._forward.clear()
        self.focus_id = node.id
        return node

    @property
    def current(self) -> ImageNode | None:
        return self.nodes.get(self.focus_id) if self.focus_id else None

    def children(self, node_id: str) -> list[ImageNode]:
        return [n for n in self.nodes.values() if n.parent_id == node_id]

    def lineage(self, node_id: str) -> list[ImageNode]:
        """The node and its ancestors, oldest first."""
        chain = []
        node = self.nodes.get(node_id)
        while node is not None:
            chain.append(node)
            node = self.nodes.get(node.parent_id) if node.parent_id else None
        return list(reversed(chain))

    # --- persistence ----------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Everything but the nodes, as JSON-safe data (the nodes are stored one by one)."""
        return {
            "focus_id": self.focus_id,
            "next_id": self._next_id,
            "back": list(self._back),
            "forward": list(self._forward),
            "pending_question": self.pending_question,
            "pending_confirmation": self.pending_confirmation,
            "history": [asdict(x) for x in self.history],
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Apply a snapshot over the nodes already loaded; ids of missing nodes are dropped."""
        known = set(self.nodes) | {None}
        self._next_id = max(int(snapshot.get("next_id", 1)), self._next_id)
        self.mark_used(self.nodes)
        focus = snapshot.get("focus_id")
        self.focus_id = focus if focus in known else None
        if self.focus_id is None and self.nodes:
            self.focus_id = list(self.nodes)[-1]  # recorded after the last snapshot
        self._back = [n for n in snapshot.get("back", []) if n in known]
        self._forward = [n for n in snapshot.get("forward", []) if n in known]
        self.pending_question = snapshot.get("pending_question")
        self.pending_confirmation = snapshot.get("pending_confirmation")
        names = {f.name for f in fields(Exchange)}
        self.history = [
            Exchange(**{k: v for k, v in x.items() if k in names})
            for x in snapshot.get("history", [])
        ]

    # --- moving the focus -----------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._back)

    @property
    def can_redo(self) -> bool:
        return bool(self._forward)

    @property
    def redo_target(self) -> str | None:
        """The picture a redo would bring back (the one last undone), if any."""
        return self._forward[-1] if self._forward else None

    def undo(self) -> ImageNode | None:
        """Move the focus back to the image shown before; returns the new current image."""
        if not self._back:
            raise LookupError("nothing to undo")
        self._forward.append(self.focus_id)
        self.focus_id = self._back.pop()
        return self.current

    def redo(self) -> ImageNode | None:
        if not self._forward:
            raise LookupError("nothing to redo")
        self._back.append(self.focus_id)
        self.focus_id = self._forward.pop()
        return self.current

    def clear_focus(self) -> None:
        """ "Start over": nothing in view, so the next picture starts a new tree (undoable)."""
        if self.focus_id is not None:
            self._back.append(self.focus_id)
            self._forward.clear()
            self.focus_id = None

    def select(self, node_id: str) -> ImageNode:
        """Put an existing image in focus ("go back to the first one")."""
        if node_id not in self.nodes:
            raise KeyError(node_id)
        if node_id != self.focus_id:
            self._back.append(self.focus_id)
            self._forward.clear()
            self.focus_id = node_id
        return self.nodes[node_id]
