"""Synthetic enriched events as a Spark column, for the benchmarks: each bench draws sites,
times, pages, referrers and visitors its own way; the rest of an event is made here."""
from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from schemas.sources import ACQUISITION_FIELDS, RULE_VERSION
from views.transforms import acquisition

COUNTRIES = ("FR", "US", "DE", "IN")
DEVICES = ("desktop", "mobile", "tablet")


def _pick(values: tuple[str, ...], key: Column, salt: int) -> Column:
    return F.array(*[F.lit(v) for v in values])[F.abs(F.xxhash64(key, F.lit(salt)) % len(values))]


def event_json(*, site: Column, kind: Column, ts: Column, url: Column, path: Column, referrer: Column,
               visitor_id: Column, client_key: Column, element_hash: Column, collector_fields: bool = True,
               acquisition_fields: bool = True) -> Column:
    """An enriched event's JSON, as the collector writes it to Kafka `events`: a fresh
    event_id; a custom event is named "signup"; clicks and impressions mark element el0-el4
    (by ``element_hash``); the client's country and device are drawn by ``client_key``, on
    Firefox and Linux; where the visit came from is the collector's rule (run by Spark), on
    a site with no registered domain. ``collector_fields``: also received_at and
    schema_version. ``acquisition_fields``: False for events as archived before the
    collector classified them (the batch layer then does)."""
    sources = []
    if acquisition_fields:
        acquired = acquisition(url, referrer, F.lit(None).cast("array<string>"))
        sources = [*(acquired[name].alias(name) for name in ACQUISITION_FIELDS),
                   F.lit(RULE_VERSION).alias("source_rule")]
    return F.to_json(F.struct(
        F.expr("uuid()").alias("event_id"), site.alias("site"), kind.alias("type"), ts.alias("ts"), url.alias("url"),
        path.alias("path"), referrer.alias("referrer"), visitor_id.alias("visitor_id"),
        *([F.lit(0).alias("received_at"), F.lit(2).alias("schema_version")] if collector_fields else []),
        F.when(kind == "custom", F.lit("signup")).alias("name"),
        F.when(kind.isin("click", "impression"),
               F.create_map(F.lit("element"), F.concat(F.lit("el"), (F.abs(element_hash) % 5).cast("string"))))
        .alias("props"),
        _pick(COUNTRIES, client_key, 5).alias("country"), _pick(DEVICES, client_key, 6).alias("device"),
        F.lit("Firefox").alias("browser"), F.lit("Linux").alias("os"), *sources,
    ))
