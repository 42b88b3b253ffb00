"""Sessions that nobody has used for a long time are deleted: their rows and their files.

A session is one row in the session store plus one folder ``<output_dir>/<session id>``
holding its pictures (``n1.png``, ...) and spoken replies (``turn-001-reply.wav``). Sessions
unchanged for ``api.session_keep_s`` seconds, and not in use, go: the row first (so the store
never names a picture that is gone while the session can still be opened), then the folder.
A folder is only removed when it is exactly ``<output_dir>/<session id>``; anything else a
row might name is left alone. Exports (``<output_dir>/exports/...``), which a person asked
for, are kept.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def session_folder_to_remove(folder: Path, session_id: str, output_dir: Path) -> Path | None:
    """``folder`` when it is the session's own ``<output_dir>/<id>``, else None."""
    try:
        resolved = Path(folder).expanduser().resolve()
    except OSError:
        return None
    root = Path(output_dir).expanduser().resolve()
    if resolved.parent == root and resolved.name == session_id:
        return resolved
    return None


def expire_sessions(
    store: Any,
    output_dir: Path,
    older_than_s: float,
    keep: Collection[str] = (),
    now: float | None = None,
) -> list[str]:
    """Delete the stored sessions unchanged for ``older_than_s`` seconds, with their files.

    Parameters
    ----------
    store: ``assistant.store.SessionStore`` (``stale`` and ``delete``).
    output_dir: where session folders live.
    older_than_s: how long a session is kept after its last change.
    keep: ids in use; never deleted, however old.
    now: the time (seconds since the epoch); for tests.

    Returns
    -------
    The ids deleted.
    """
    now = time.time() if now is None else now
    deleted = []
    for session_id, folder in store.stale(now - older_than_s):
        if session_id in keep:
            continue
        store.delete(session_id)
        deleted.append(session_id)
        own = session_folder_to_remove(folder, session_id, output_dir)
        if own is None:
            logger.warning(
                "Session %s: kept its files in %s (not its own folder)", session_id, folder
            )
            continue
        try:
            shutil.rmtree(own)
        except FileNotFoundError:
            pass
        except OSError as e:
            logger.warning("Session %s: could not delete %s: %s", session_id, own, e)
    if deleted:
        logger.info("Deleted %d sessions unused for %g s", len(deleted), older_than_s)
    return deleted


def expire_files(folder: Path, older_than_s: float, now: float | None = None) -> int:
    """Delete the plain files directly in ``folder`` not modified for ``older_than_s``
    seconds (the API's ``/v1/images`` results); returns how many."""
    now = time.time() if now is None else now
    removed = 0
    try:
        entries = list(Path(folder).iterdir())
    except FileNotFoundError:
        return 0
    for path in entries:
        try:
            if (
                path.is_file()
                and not path.is_symlink()
                and now - path.stat().st_mtime > older_than_s
            ):
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
        except OSError as e:
            logger.warning("Could not delete %s: %s", path, e)
    return removed
