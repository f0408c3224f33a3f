"""Synthetic enriched events as a Spark column, for the benchmarks: each bench draws sites,
times, pages, referrers and visitors its own way; the rest of an event is made here."""
from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
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


PATHS = ("/", "/pricing", "/blog", "/blog/a", "/blog/b", "/docs", "/docs/install", "/about", "/signup", "/contact")
REFERRERS = ("", "", "https://www.google.com/", "https://news.ycombinator.com/", "https://partner.example/",
             "https://site.test/")
TYPES = ("pageview", "pageview", "pageview", "click", "impression", "custom")


def visits(spark: SparkSession, n: int, *, start_ms: int, span_ms: int, sites: int, site_prefix: str = "site-",
           stamped: bool = True, seed: int = 0) -> DataFrame:
    """``n`` enriched events (a ``value`` column of JSON, as Kafka `events` holds them) of
    ``sites`` sites over [start_ms, start_ms + span_ms); ``stamped``: with the collector's
    acquisition fields (else the batch layer classifies them).

    Shaped like real traffic: visits of five events a few seconds to two minutes apart,
    starting with a pageview, by about n/10 visitors; ten pages, six referrers. ``seed``:
    another seed, other visits and visitors."""
    r = F.col("id") + F.lit(seed * 1_000_000_000_000)
    visit = (r / 5).cast("long")  # five events per visit
    step = F.col("id") % 5
    h = F.xxhash64(r)  # deterministic pseudo-random bits per event
    hv = F.xxhash64(visit)  # ... and per visit
    paths = F.array(*[F.lit(p) for p in PATHS])
    refs = F.array(*[F.lit(x) for x in REFERRERS])
    types = F.array(*[F.lit(t) for t in TYPES])
    page = paths[F.abs(h % len(PATHS))]
    kind = F.when(step == 0, F.lit("pageview")).otherwise(types[F.abs(F.xxhash64(r, F.lit(1)) % len(TYPES))])
    url = F.concat(F.lit("https://site.test"), page,
                   F.when(F.abs(h % 7) == 0, F.lit("?utm_source=news&utm_campaign=june")).otherwise(F.lit("")))
    referrer = refs[F.abs(F.xxhash64(visit, F.lit(3)) % len(REFERRERS))]
    site = F.concat(F.lit(site_prefix), (F.abs(hv) % sites).cast("string")) if sites > 1 else F.lit(site_prefix)
    return spark.range(n).select(event_json(
        site=site, kind=kind,
        ts=(F.lit(start_ms) + F.abs(F.xxhash64(visit, F.lit(2)) % max(1, span_ms - 120_000)) + step * 24_000
            + F.abs(F.xxhash64(r, F.lit(2)) % 20_000)),
        url=url, path=page, referrer=referrer,
        visitor_id=F.concat(F.lit("v"), (F.abs(F.xxhash64(visit, F.lit(4))) % (n // 10 + 1)).cast("string")),
        client_key=visit, element_hash=h, acquisition_fields=stamped).alias("value"))
