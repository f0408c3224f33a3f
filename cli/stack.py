"""`parallax stack`: the local Kafka, Cassandra (and Airflow) processes."""
from __future__ import annotations

import sys

import click

from cli.common import fail
from infra import stack as local_stack
from infra.settings import Settings
from store.provision import provision


@click.group()
def stack() -> None:
    """The local Kafka, Cassandra (and Airflow) processes."""


@stack.command("up")
@click.option("--airflow", "with_airflow", is_flag=True, help="also start Airflow standalone")
@click.pass_obj
def stack_up(settings: Settings, with_airflow: bool) -> None:
    """Fetch (once) and start Kafka and Cassandra; create topics and tables. Idempotent."""
    try:
        local_stack.up(settings, with_airflow=with_airflow)
        provision(settings)
    except Exception as exc:
        fail(exc)


@stack.command("fetch")
@click.pass_obj
def stack_fetch(settings: Settings) -> None:
    """Fetch the jars (once, into the cache) and prepare Airflow's database, starting nothing."""
    try:
        local_stack.fetch(settings)
    except Exception as exc:
        fail(exc)


@stack.command("down")
@click.pass_obj
def stack_down(settings: Settings) -> None:
    """Stop exactly what `stack up` started."""
    local_stack.down(settings)


@stack.command("status")
@click.pass_obj
def stack_status(settings: Settings) -> None:
    states = local_stack.status(settings)
    for name, state in states.items():
        click.echo(f"{name:10s} {state}")
    sys.exit(0 if states["kafka"] == states["cassandra"] == "ready" else 3)
