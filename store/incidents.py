"""Incidents the system records about itself (table ``incidents``): a failed batch run (the
DAG's failure callback), a day whose drift passed the threshold (the batch job). The
alarms turn each into one notification (``serving_layer.alerting.alarms``)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from store.cql import Tables


@dataclass(frozen=True)
class Incident:
    id: str  # stable for one happening: recording it again changes nothing
    kind: str  # "batch_failed", "drift"
    site: str  # "" when it concerns no one site
    title: str
    at: datetime
    values: dict[str, Any]
    notified: bool = False


class Incidents(Tables):

    def record(self, incident: Incident) -> None:
        at = incident.at.astimezone(timezone.utc)
        self.execute("INSERT INTO {ks}.incidents (day, at, id, kind, site, title, body, notified) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, false)",
                     (at.date(), at, incident.id, incident.kind, incident.site, incident.title,
                      json.dumps(incident.values, default=str)))

    def recent(self, now: datetime, days: int = 2) -> list[Incident]:
        """The incidents of the last ``days`` days (today's included), oldest first."""
        out = []
        for d in range(days - 1, -1, -1):
            day = (now - timedelta(days=d)).astimezone(timezone.utc).date()
            for r in self.execute("SELECT * FROM {ks}.incidents WHERE day = ?", (day,)):
                at = r.at.replace(tzinfo=timezone.utc) if r.at.tzinfo is None else r.at
                out.append(Incident(r.id, r.kind, r.site or "", r.title, at, json.loads(r.body or "{}"),
                                    bool(r.notified)))
        return out

    def mark_notified(self, incident: Incident) -> None:
        at = incident.at.astimezone(timezone.utc)
        self.execute("UPDATE {ks}.incidents SET notified = true WHERE day = ? AND at = ? AND id = ?",
                     (at.date(), at, incident.id))
