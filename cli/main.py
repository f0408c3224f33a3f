"""The `parallax` command: run the stack, the pipeline's processes and the demo."""
from __future__ import annotations

import json
import logging

import click

from cli import accounts, alerts, archive, erasure, reprocess, services, sites, sources, stack, traffic
from cli.common import fail
from cli.invalid import invalid
from infra import airflow_env
from infra.settings import Settings, SettingsError, load_settings


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("kafka", "cassandra", "py4j", "werkzeug", "engineio", "socketio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="debug logging")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Parallax: self-hosted real-time analytics on Kafka, Spark, Cassandra and Airflow."""
    _logging(verbose)
    try:
        ctx.obj = load_settings()
    except SettingsError as exc:
        fail(exc)
    airflow_env.apply(ctx.obj)


@main.command("settings")
@click.pass_obj
def show_settings(settings: Settings) -> None:
    """Print the effective settings, by group (from PARALLAX_* variables and defaults)."""
    click.echo(json.dumps(settings.describe(), indent=2))


for command in (stack.stack, sites.site, sites.goal, services.collect, services.serve, services.speed, services.tail,
                services.batch, services.alerting, alerts.alert, invalid, sources.sources, accounts.user,
                accounts.member, accounts.token, traffic.demo, traffic.generate, traffic.watch, archive.archive,
                reprocess.reprocess, erasure.erase, erasure.erasures):
    main.add_command(command)


if __name__ == "__main__":
    main()
