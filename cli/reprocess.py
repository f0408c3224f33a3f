"""`parallax reprocess report RUN_ID`: a dry run's report of the reprocess DAG."""
from __future__ import annotations

import click

from cli.common import fail
from infra.clients import cassandra_keyspace
from infra.settings import Settings
from store.reprocessing import ReprocessReports


@click.group()
def reprocess() -> None:
    """Reprocessing ranges of days: trigger the Airflow DAG `parallax_reprocess` (a form in
    the Airflow UI); its dry runs' reports are read here."""


@reprocess.command()
@click.argument("run_id")
@click.option("--all", "show_all", is_flag=True, help="every total, not only those that would change")
@click.pass_obj
def report(settings: Settings, run_id: str, show_all: bool) -> None:
    """What a dry run found, per site, day and measure: the stored total and the recomputed one."""
    with cassandra_keyspace(settings) as session:
        comparisons = ReprocessReports(session, settings.cassandra.keyspace).read(run_id)
    if not comparisons:
        fail(f"no dry-run report for {run_id!r} (reports are kept 90 days)")
    shown = comparisons if show_all else [c for c in comparisons if c.differs]
    click.echo(f"{'site':<24} {'day':<10} {'measure':<18} {'stored':>14} {'recomputed':>14}")
    for c in shown:
        stored = "-" if c.stored is None else f"{c.stored:,}"
        click.echo(f"{c.site:<24} {c.day!s:<10} {c.measure:<18} {stored:>14} {c.recomputed:>14,}")
    click.echo(f"{sum(c.differs for c in comparisons)} of {len(comparisons)} totals would change "
               "('-': the day was never computed)")
