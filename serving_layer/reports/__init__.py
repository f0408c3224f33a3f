"""The reports facade (``facade``): one function per question, over the views and, for what
the views cannot answer, the master dataset (``on_demand``)."""
from serving_layer.reports.facade import (
    COMPARISONS,
    MAX_BUCKETS,
    ReportError,
    Sources,
    ViewStore,
    answered_on_demand,
    breakdown_report,
    previous_range,
    realtime_report,
    traffic_report,
)

__all__ = ["COMPARISONS", "MAX_BUCKETS", "ReportError", "Sources", "ViewStore", "answered_on_demand",
           "breakdown_report", "previous_range", "realtime_report", "traffic_report"]
