"""The batch layer: ``job`` (a day's recipe), ``days`` (its exact views), ``writer``
(upserts overlapping Spark's work), ``drift`` (how far the speed views were), ``schedule``
(which site's day is due); ``daily_views`` is the entry point spark-submit runs."""
