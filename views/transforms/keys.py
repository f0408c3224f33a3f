"""Which views an event counts in: one row per event and view key (the site total, each
breakdown, elements, goals, properties), so that one aggregation computes every view."""
from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from schemas.sources import NONE_VALUE
from views.catalogue import GOAL_VIEW, PROPERTY_VIEW_PREFIX, TOTAL_DIM, TRAFFIC_VIEW
from views.goals import Goal
from views.transforms.dimensions import dim_column, with_dimensions
from views.transforms.events import TYPE_CODE


def goal_hits(goals: Sequence[Goal]) -> list[Column]:
    """One column per distinct goal (name, kind, pattern): the goal's name where the event
    converts it -- a pageview whose path matches a page goal's pattern, an event whose name
    matches an event goal, on a site that has the goal -- else null. Sites sharing a goal
    share its column, so an event is tested once per distinct goal, not once per site."""
    sites: dict[tuple[str, str, str], list[str]] = {}
    for g in goals:
        sites.setdefault((g.name, g.kind, g.pattern), []).append(g.site)
    hits = []
    for (name, kind, pattern), on in sorted(sites.items()):
        regex = Goal(on[0], name, kind, pattern).regex()
        if kind == "page":
            match = (F.col("type") == "pageview") & F.col("path").rlike(regex)
        else:
            match = F.coalesce(F.col("name"), F.col("type")) == F.lit(pattern)
        hits.append(F.when(F.col("site").isin(*sorted(set(on))) & match, F.lit(name)))
    return hits


def with_view_keys(events: DataFrame, goals: Sequence[Goal] = ()) -> DataFrame:
    """One row per event and view it counts in: (``view_name``, ``dim``) is ("traffic", "")
    for the site total, then (dimension, value) for every breakdown, ("element", name) for
    clicks and impressions of a marked element, ("goal", name) for every goal the event
    converts, and (``prop:<key>``, value) for every custom property. One aggregation then
    computes every view at once. Takes the output of ``with_dimensions`` (or adds it).

    Written without higher-order functions (filter, transform), which Spark evaluates row
    by row outside its generated code: the keys are one array -- the fixed views, a
    conditional element per goal, then the property map's entries -- exploded with their
    position, whose nulls are filtered out and whose entries from the property map get
    their "prop:" prefix after the explode. Spark then runs the explode and the
    aggregation above it as generated code (about a quarter of the batch hour views' CPU).
    """
    if dim_column("page") not in events.columns:
        events = with_dimensions(events)

    def vk(view: str, dim: Column) -> Column:
        return F.struct(F.lit(view).alias("view_name"), dim.alias("dim"))

    element = F.col("props").getItem("element")
    fixed = [c.removeprefix("dim_") for c in events.columns if c.startswith("dim_")]
    keys = [
        vk(TRAFFIC_VIEW, F.lit(TOTAL_DIM)),
        *(vk(name, F.col(dim_column(name))) for name in fixed),
        F.when(F.col("type").isin("click", "impression") & element.isNotNull(), vk("element", element)),
        *(F.when(hit.isNotNull(), vk(GOAL_VIEW, hit)) for hit in goal_hits(goals)),
    ]
    # A property's entry (key, value) becomes (view_name, dim) by position; its prefix is
    # added below, where its position says it came from the map.
    props = F.map_entries(F.coalesce(F.col("props"), F.create_map().cast("map<string,string>")))
    key_type = "array<struct<view_name:string,dim:string>>"
    all_keys = F.concat(F.array(*keys).cast(key_type), props.cast(key_type))
    typed = [TYPE_CODE] if TYPE_CODE in events.columns else ["type"]
    needed = ["site", *typed, "visitor_id", "event_time"] + [c for c in events.columns
                                                             if c == "timezone" or c.startswith("_bucket_")]
    exploded = events.select(*needed, F.posexplode(all_keys).alias("_pos", "_vk")).where(F.col("_vk").isNotNull())
    is_prop = F.col("_pos") >= len(keys)
    return exploded.select(
        *needed,
        F.when(is_prop, F.concat(F.lit(PROPERTY_VIEW_PREFIX), F.col("_vk.view_name")))
        .otherwise(F.col("_vk.view_name")).alias("view_name"),
        F.when(is_prop, F.coalesce(F.col("_vk.dim"), F.lit(NONE_VALUE))).otherwise(F.col("_vk.dim")).alias("dim"))
