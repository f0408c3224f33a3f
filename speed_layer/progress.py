"""What the speed layer records of its queries' progress: the events each micro-batch
dropped behind the watermark (``store.diagnostics``; the batch layer counts them)."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from pyspark.sql.streaming import StreamingQueryListener

from store.diagnostics import Diagnostics

log = logging.getLogger(__name__)


class DroppedLateListener(StreamingQueryListener):
    """Records how many input rows each micro-batch dropped behind the watermark."""

    def __init__(self, diagnostics: Diagnostics) -> None:
        self.diagnostics = diagnostics

    def onQueryStarted(self, event: Any) -> None:
        pass

    def onQueryProgress(self, event: Any) -> None:
        progress = event.progress
        dropped = sum(op.numRowsDroppedByWatermark for op in progress.stateOperators)
        if dropped:
            log.warning("%s micro-batch %d dropped %d events behind the watermark (left to the batch layer)",
                        progress.name, progress.batchId, dropped)
            try:
                self.diagnostics.record_dropped(progress.name, str(progress.id), progress.batchId, dropped,
                                                datetime.now(timezone.utc))
            except Exception as exc:  # the count is a diagnostic: never let it stop the stream
                log.warning("could not record the dropped count: %s", exc)

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        pass
