"""`parallax erase VISITOR_ID...` and `parallax erasures`: data subjects' erasure requests.

A request is recorded first (pending), then the Airflow DAG `parallax_erasure` erases it:
it takes pending requests every five minutes, and `parallax erase` also triggers a run for
its request at once (``airflow dags trigger``), when Airflow is set up here."""
from __future__ import annotations

import getpass
from datetime import datetime, timezone

import click

from cli.common import fail
from infra.airflow_env import ERASURE_DAG, trigger_dag
from infra.clients import cassandra_keyspace
from infra.settings import Settings
from store.erasures import ErasureError, ErasureRequest, Erasures, site_days_text
from store.registry import Registry


def requester() -> str:
    """Who asks, from a terminal: ``cli:<os user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _trigger(settings: Settings, request: ErasureRequest) -> None:
    ok, said = trigger_dag(settings, ERASURE_DAG, {"request_id": request.id})
    if ok:
        click.echo(f"triggered a run of {ERASURE_DAG} for it")
    else:
        click.echo(f"could not trigger {ERASURE_DAG} now ({said or 'no answer'}); its next scheduled run (every five "
                   "minutes) takes the request")


def _show(r: ErasureRequest) -> None:
    click.echo(f"request        {r.id}")
    click.echo(f"status         {r.status}" + (f" ({r.error})" if r.error else ""))
    click.echo(f"asked by       {r.requested_by} at {r.requested_at.isoformat()}")
    click.echo(f"visitor ids    {', '.join(r.visitor_ids)}")
    click.echo(f"site           {r.site or '(every site)'}")
    if r.note:
        click.echo(f"note           {r.note}")
    if r.run_id:
        started = r.started_at.isoformat() if r.started_at else "?"
        click.echo(f"taken by       {r.run_id} (attempt {r.attempts}, started {started})")
    click.echo(f"site-days      {site_days_text(r.site_days)}")
    click.echo(f"events removed {'-' if r.events_removed is None else f'{r.events_removed:,}'}"
               + (f" (table version {r.delete_version})" if r.delete_version is not None else ""))
    click.echo(f"recomputed     {site_days_text(r.recomputed)}")
    click.echo(f"left to the nightly run {site_days_text(r.waiting)}")
    if r.finished_at:
        click.echo(f"finished       {r.finished_at.isoformat()}")


@click.command()
@click.argument("visitor_ids", nargs=-1, required=True)
@click.option("--site", default=None, help="only this site's events (default: every site's)")
@click.option("--note", default="", help="why, for the record (a ticket, a reference)")
@click.option("--trigger/--no-trigger", default=True, show_default=True,
              help="trigger the erasure DAG at once, or leave the request to its next scheduled run")
@click.pass_obj
def erase(settings: Settings, visitor_ids: tuple[str, ...], site: str | None, note: str, trigger: bool) -> None:
    """Erase a data subject: record a request to remove every event of VISITOR_IDS from the
    master dataset and recompute the days they touched (the DAG `parallax_erasure` does it)."""
    with cassandra_keyspace(settings) as session:
        sites = Registry(session, settings.cassandra.keyspace).site_zones()
        try:
            request = Erasures(session, settings.cassandra.keyspace).request(
                visitor_ids, requester(), datetime.now(timezone.utc), site=site, note=note, known_sites=sites)
        except ErasureError as exc:
            fail(exc)
    click.echo(f"erasure request {request.id} recorded: {len(request.visitor_ids)} visitor id(s), "
               f"{'site ' + site if site else 'every site'}")
    if trigger:
        _trigger(settings, request)
    click.echo(f"follow it with: parallax erasures show {request.id}")


@click.group()
def erasures() -> None:
    """Erasure requests: what was asked, by whom, and what was done."""


@erasures.command("list")
@click.option("--status", type=click.Choice(("pending", "running", "done", "failed")), default=None)
@click.pass_obj
def erasures_list(settings: Settings, status: str | None) -> None:
    """The requests, newest first."""
    with cassandra_keyspace(settings) as session:
        found = [r for r in Erasures(session, settings.cassandra.keyspace).all() if status in (None, r.status)]
    for r in found:
        removed = "-" if r.events_removed is None else f"{r.events_removed:,}"
        click.echo(f"{r.id}  {r.status:8s}  {r.requested_at:%Y-%m-%d %H:%M}  {r.requested_by:28s}  "
                   f"{len(r.visitor_ids):4d} id(s)  {removed:>10s} events removed")
    if not found:
        click.echo("no erasure request")


@erasures.command("show")
@click.argument("request_id")
@click.pass_obj
def erasures_show(settings: Settings, request_id: str) -> None:
    """One request's record."""
    with cassandra_keyspace(settings) as session:
        found = Erasures(session, settings.cassandra.keyspace).get(request_id)
    if found is None:
        fail(f"no erasure request {request_id!r}")
    _show(found)


@erasures.command("retry")
@click.argument("request_id")
@click.option("--trigger/--no-trigger", default=True, show_default=True)
@click.pass_obj
def erasures_retry(settings: Settings, request_id: str, trigger: bool) -> None:
    """Put a failed request back to pending (its events already removed stay removed; the
    retry recomputes the days it recorded)."""
    with cassandra_keyspace(settings) as session:
        try:
            request = Erasures(session, settings.cassandra.keyspace).retry(request_id)
        except ErasureError as exc:
            fail(exc)
    click.echo(f"erasure request {request.id} is pending again")
    if trigger:
        _trigger(settings, request)
