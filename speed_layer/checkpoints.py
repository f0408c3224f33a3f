"""The speed layer's checkpoints: which version of each stateful query's shape they hold,
where a query starts when its checkpoint is new, and what to say when one cannot be restored.

Spark can only restore a query's state into a query of the same shape. Bump a query's
version with every change Spark cannot restore from an old checkpoint (new grouping keys
or aggregates, a new session window): the query then starts a new checkpoint and rebuilds
its speed views from Kafka (``query_start``).
"""
from __future__ import annotations

import re
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

# 4: events deduplicated on (event_id, event_time), forgotten once the watermark passes them.
VIEWS_QUERY_VERSION = 4
# 2: the sink keeps running sums per minute (speed_session_sums), not every session.
# 3: events deduplicated on (event_id, event_time), as the views query.
SESSIONS_QUERY_VERSION = 3
VERSIONS = {"speed_views": ("VIEWS_QUERY_VERSION", VIEWS_QUERY_VERSION),
            "speed_sessions": ("SESSIONS_QUERY_VERSION", SESSIONS_QUERY_VERSION)}
RESTORE_ERRORS = ("STATE_STORE_KEY_SCHEMA_NOT_COMPATIBLE", "STATE_STORE_VALUE_SCHEMA_NOT_COMPATIBLE",
                  "STATE_SCHEMA", "StateSchemaNotCompatible", "INCOMPATIBLE_DATA_FOR_STATE")


def query_checkpoint(checkpoint_dir: Path, query: str, version: int | None = None) -> Path:
    """The checkpoint of ``query`` ("speed_views" or "speed_sessions") at ``version``."""
    return checkpoint_dir / f"{query}_v{VERSIONS[query][1] if version is None else version}"


def archive_checkpoint(checkpoint_dir: Path) -> Path:
    """The archive query's checkpoint (stateless: it has no versions)."""
    return checkpoint_dir / "archive"


def archive_commits(checkpoint_dir: Path) -> int:
    """How many micro-batches the archive query has committed (its checkpoint's commit log)."""
    commits = archive_checkpoint(checkpoint_dir) / "commits"
    return max((int(p.name) + 1 for p in commits.glob("[0-9]*")), default=0) if commits.exists() else 0


def older_checkpoints(checkpoint_dir: Path, query: str, version: int | None = None) -> list[Path]:
    """Checkpoints of earlier versions of ``query`` (the first had no version)."""
    version = VERSIONS[query][1] if version is None else version
    found = []
    for path in sorted(checkpoint_dir.glob(f"{query}*")):
        m = re.fullmatch(rf"{query}(?:_v(\d+))?", path.name)
        if m and path.is_dir() and int(m.group(1) or 1) < version:
            found.append(path)
    return found


def query_start(checkpoint_dir: Path, query: str, boundaries: list[datetime], starting_offsets: str, *,
                rebuild: bool = False, version: int | None = None) -> tuple[dict[str, str], str | None]:
    """Kafka options for a stateful query's first start, and a note for the operator.

    A query whose checkpoint exists resumes from it (the options are ignored). A new
    version of the query rebuilds every speed bucket that reports still read: from the
    earliest batch boundary on (an hour earlier, for stragglers), by Kafka timestamp.
    """
    version = VERSIONS[query][1] if version is None else version
    checkpoint = query_checkpoint(checkpoint_dir, query, version)
    if checkpoint.exists():
        return {"startingOffsets": starting_offsets}, None
    older = older_checkpoints(checkpoint_dir, query, version)
    if not older and not rebuild:
        return {"startingOffsets": starting_offsets}, None
    if boundaries:
        since = min(boundaries) - timedelta(hours=1)
        options = {"startingTimestamp": str(int(since.timestamp() * 1000))}
        origin = f"Kafka offsets at {since.isoformat()} (the earliest batch boundary, less an hour)"
    else:
        options = {"startingOffsets": "earliest"}
        origin = "the earliest offsets Kafka keeps (no batch boundary yet)"
    what = query.removeprefix("speed_")
    reason = (f"the speed {what} query changed (version {version}); its old checkpoint "
              f"{', '.join(str(p) for p in older)} cannot be restored" if older else "rebuild asked for")
    note = (f"{reason}. Rebuilding the speed {what} from {origin} into {checkpoint}: every bucket is rewritten "
            "with its full value. Delete the old checkpoint when the new query has caught up.")
    return options, note


def explain_failure(error: object, checkpoint: Path) -> str | None:
    """A clear message for a query that failed because its checkpoint cannot be restored."""
    text = str(error)
    if not any(marker in text for marker in RESTORE_ERRORS):
        return None
    query = "speed_sessions" if checkpoint.name.startswith("speed_sessions") else "speed_views"
    constant = VERSIONS[query][0]
    return (f"the speed {query.removeprefix('speed_')} query cannot restore its state from {checkpoint}: the "
            f"query's shape changed without a new {constant} (speed_layer/checkpoints.py). Way forward: bump "
            f"{constant}, or run `parallax speed --rebuild`, which moves the speed layer's checkpoints aside and "
            "rebuilds the speed views from Kafka (README: 'Changing the speed layer').")


def move_aside(checkpoint: Path) -> Path:
    """Keep a checkpoint that will be rebuilt, under a dated name, rather than delete it."""
    target = checkpoint.with_name(f"{checkpoint.name}.replaced-{time.strftime('%Y%m%dT%H%M%S')}")
    shutil.move(str(checkpoint), str(target))
    return target
