"""spark-submit entry point of the batch layer: ``spark-submit batch_layer/daily_views.py --date D``.

Settings (Cassandra, master dataset) come from the PARALLAX_* environment, like every
other Parallax process.
"""
from __future__ import annotations

import argparse
import logging
import sys
from datetime import date


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Recompute one day's exact views from the master dataset.")
    parser.add_argument("--date", required=True, type=date.fromisoformat, help="the day, YYYY-MM-DD (UTC)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from batch_layer.job import run_day
    from infra.clients import cassandra_session
    from infra.settings import load_settings
    from infra.spark import get_session

    settings = load_settings()
    spark = get_session(settings, f"parallax-batch-{args.date}")
    session = cassandra_session(settings, settings.keyspace)
    try:
        run_day(spark, session, settings.keyspace, str(settings.master_dir), args.date)
    finally:
        session.cluster.shutdown()
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
