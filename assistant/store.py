"""Sessions that survive a restart: SQLite (WAL) for the edit tree and focus, PNG files for images.

An image is written to disk atomically first and recorded second, so after a crash (even
``kill -9`` mid-generation) every recorded node has its file and nothing finished is lost.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from dataclasses import fields
from pathlib import Path

from assistant.sessions import SessionSummary
from assistant.state import DialogueState, ImageNode

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    folder TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    state TEXT NOT NULL          -- focus, undo/redo stacks, conversation, flags (JSON)
);
CREATE TABLE IF NOT EXISTS nodes (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,        -- insertion order within the session
    node TEXT NOT NULL,          -- every ImageNode field (JSON)
    PRIMARY KEY (session_id, id)
);
"""

_NODE_FIELDS = {f.name for f in fields(ImageNode)}


class SessionStore:
    """Persists DialogueStates in SQLite (an ``assistant.sessions.SessionRepository``).

    One connection, serialised by a lock (writes are tiny)."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process kill
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- writing ---------------------------------------------------------------------
    def save_state(
        self, session_id: str, folder: Path, state: DialogueState, extra: dict | None = None
    ) -> None:
        """Record the focus, stacks and conversation of a session (creating it if new)."""
        blob = json.dumps({**state.snapshot(), "extra": extra or {}})
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO sessions (id, folder, created, updated, state) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET state = excluded.state, updated = excluded.updated",
                (session_id, str(folder), now, now, blob),
            )

    def add_node(
        self,
        session_id: str,
        folder: Path,
        state: DialogueState,
        node: ImageNode,
        extra: dict | None = None,
    ) -> None:
        """Record a finished image (its file already on disk) and the new focus, atomically."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                seq = self._db.execute(
                    "SELECT COUNT(*) FROM nodes WHERE session_id = ?", (session_id,)
                ).fetchone()[0]
                self._db.execute(
                    "INSERT OR IGNORE INTO sessions (id, folder, created, updated, state) "
                    "VALUES (?, ?, ?, ?, '{}')",
                    (session_id, str(folder), time.time(), time.time()),
                )
                self._db.execute(
                    "INSERT INTO nodes (session_id, id, seq, node) VALUES (?, ?, ?, ?)",
                    (session_id, node.id, seq, json.dumps(node.to_json())),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        self.save_state(session_id, folder, state, extra)

    def delete(self, session_id: str) -> None:
        """Forget a session: its nodes and its row (its files are the caller's to remove)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM nodes WHERE session_id = ?", (session_id,))
                self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # --- reading ---------------------------------------------------------------------
    def stale(self, before: float) -> list[tuple[str, Path]]:
        """(id, folder) of the sessions last changed before ``before`` (seconds since the
        epoch), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, folder FROM sessions WHERE updated < ? ORDER BY updated", (before,)
            ).fetchall()
        return [(session_id, Path(folder)) for session_id, folder in rows]

    def summaries(self, limit: int = 50) -> list[SessionSummary]:
        """The most recently updated sessions: id, title (the first request), time, pictures."""
        with self._lock:
            rows = self._db.execute(
                "SELECT s.id, s.updated, s.state, "
                "(SELECT COUNT(*) FROM nodes n WHERE n.session_id = s.id) "
                "FROM sessions s ORDER BY s.updated DESC LIMIT ?",
                (limit,),
            ).fetchall()
        out = []
        for session_id, updated, blob, pictures in rows:
            history = json.loads(blob or "{}").get("history") or []
            title = next((x.get("user") for x in history if x.get("user")), "")
            out.append(SessionSummary(session_id, title, updated, pictures))
        return out

    def session_ids(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT id FROM sessions ORDER BY updated DESC").fetchall()
        return [r[0] for r in rows]

    def load(self, session_id: str) -> tuple[Path, DialogueState, dict]:
        """Rebuild a session's state; nodes whose file is gone are skipped, focus kept valid."""
        with self._lock:
            row = self._db.execute(
                "SELECT folder, state FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            node_rows = self._db.execute(
                "SELECT node FROM nodes WHERE session_id = ? ORDER BY seq", (session_id,)
            ).fetchall()
        if row is None:
            raise KeyError(session_id)
        folder, blob = Path(row[0]), json.loads(row[1] or "{}")
        state = DialogueState()
        recorded = []
        for (text,) in node_rows:
            data = {k: v for k, v in json.loads(text).items() if k in _NODE_FIELDS}
            node = ImageNode(**data)
            recorded.append(node.id)
            if Path(node.path).exists():
                state.nodes[node.id] = node
        state.mark_used(recorded)  # a node whose file is gone keeps its id to itself
        state.restore(blob)
        return folder, state, blob.get("extra", {})

    def export(self, session_id: str, target: str | Path) -> Path:
        """Copy a session's PNGs (with their metadata) and a JSON of its tree into ``target``."""
        _, state, _ = self.load(session_id)
        target = Path(target)
        target.mkdir(parents=True, exist_ok=True)
        for node in state.nodes.values():
            shutil.copy2(node.path, target / Path(node.path).name)
        tree = {
            "session": session_id,
            "focus": state.focus_id,
            "nodes": [{**n.to_json(), "path": Path(n.path).name} for n in state.nodes.values()],
            "conversation": state.snapshot()["history"],
        }
        (target / "session.json").write_text(json.dumps(tree, indent=2))
        return target
