"""The pure DataFrame transforms both layers run: the measures are written once, here.

Spark's DataFrame API runs the same code on streaming and static frames, so the speed
layer (Kafka stream) and the batch layer (master dataset) call these functions alike.
Where the layers must differ, the difference is one named parameter:
- ``exact_visitors``: streaming aggregation cannot count distinct values exactly, so the
  speed layer estimates visitors from the HLL sketch; the batch layer counts them exactly.
- ``within_watermark``: the speed layer can only remember event ids for its watermark.

By concern: ``events`` (parse, event time, type code, dedupe), ``buckets`` (time buckets
and local days), ``channels`` (where a visit came from: the rule run by Spark), ``dimensions`` (every event
dimension's value), ``keys`` (the views an event counts in, goals included),
``aggregates`` (the event measures of every view), ``sessions`` (sessions and their
measures). This package's names are the ones the layers use.
"""
from views.transforms.aggregates import COUNT_COLUMNS, traffic, views, views_from_partials, visitor_partials
from views.transforms.buckets import bucket_column, local_date, with_bucket
from views.transforms.channels import acquisition, is_stale, with_acquisition
from views.transforms.dimensions import with_dimensions
from views.transforms.events import dedupe_events, event_ddl, parse_events, with_event_time, with_type_code
from views.transforms.keys import goal_hits, with_view_keys
from views.transforms.sessions import session_rows, session_views

__all__ = [
    "COUNT_COLUMNS", "acquisition", "bucket_column", "dedupe_events", "event_ddl", "goal_hits", "is_stale",
    "local_date", "parse_events", "session_rows", "session_views", "traffic", "views", "views_from_partials",
    "visitor_partials", "with_acquisition", "with_bucket", "with_dimensions", "with_event_time", "with_type_code",
    "with_view_keys",
]
