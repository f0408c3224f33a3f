"""`parallax archive`: the master dataset's maintenance."""
from __future__ import annotations

import sys
from datetime import datetime

import click

from cli.common import fail
from infra.settings import Settings


@click.group()
def archive() -> None:
    """The master dataset (raw events, a Delta Lake table)."""


@archive.command()
@click.pass_obj
def migrate(settings: Settings) -> None:
    """Turn a Parquet archive of an earlier Parallax into the Delta table, in place, with
    every date's events counted before and after (stop the speed layer first)."""
    from batch_layer.migrate_archive import MigrationError  # noqa: PLC0415 -- PySpark: only this command loads it
    from batch_layer.migrate_archive import migrate as run_migration  # noqa: PLC0415
    from infra.spark import get_session  # noqa: PLC0415

    path = settings.paths.master_dir
    spark = get_session(settings, "parallax-archive-migrate", batch=True)
    try:
        result = run_migration(spark, path)
    except MigrationError as exc:
        fail(exc)
    finally:
        spark.stop()
    if result is None:
        click.echo(f"{path}: nothing to migrate (already a Delta table, or no archive yet)")
        return
    click.echo(f"{path}: migrated to Delta Lake; events per date, before = after:")
    for day, (n, _) in sorted(result.after.items()):
        click.echo(f"  {day}  {n:>12,}")
    click.echo(f"  total       {result.events:>12,}")


@archive.command()
@click.option("--day", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="compact this date's partition (UTC); default: those over the threshold, as the daily DAG does")
@click.pass_obj
def compact(settings: Settings, day: datetime | None) -> None:
    """Compact the master dataset's date partitions into a few large files, beside the
    running speed layer, then VACUUM it (the DAG `parallax_compaction` submits the same job)."""
    from batch_layer.compact import parse_args, run  # noqa: PLC0415 -- PySpark: only this command loads it

    sys.exit(run(settings, parse_args(["--day", day.date().isoformat()] if day else [])))
