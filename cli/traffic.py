"""`parallax demo | generate | watch`: generated traffic, the demo that sends it, and its live pushes."""
from __future__ import annotations

import sys
from pathlib import Path

import click
import socketio

from cli.common import fail
from infra.settings import Settings
from tools.demo import run_demo
from tools.generator.catalog import Mix
from tools.generator.run import Config, cli_run, parse_duration


@click.command()
@click.option("--rate", default=5.0, show_default=True, help="events per second of generated live traffic")
@click.option("--no-airflow", is_flag=True, help="run the batch job directly instead of through Airflow")
@click.pass_obj
def demo(settings: Settings, rate: float, no_airflow: bool) -> None:
    """The live demo: stack, collector, speed and serving layers, a sample site to click
    around, generated traffic, a nightly run."""
    sys.exit(run_demo(settings, rate=rate, with_airflow=not no_airflow))


@click.command()
@click.option("--sites", "n_sites", default=3, show_default=True, type=click.IntRange(1, 200),
              help="how many sites (registered when missing, with goals)")
@click.option("--prefix", default="gen-", show_default=True,
              help="site ids: PREFIX + shop, blog, docs, app, then shop2, blog2, ...")
@click.option("--rate", default=20.0, show_default=True, type=click.FloatRange(min=0),
              help="events per second, sent as they happen; 0: as fast as possible")
@click.option("--max", "as_fast", is_flag=True, help="as fast as possible (--rate 0)")
@click.option("--events", type=click.IntRange(min=1), help="stop after this many events (copies not counted)")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), help="stop after this many seconds")
@click.option("--window", default="1h", show_default=True,
              help="as fast as possible: the simulated time the events span, ending now (e.g. 90m, 48h)")
@click.option("--seed", default=1, show_default=True, type=int, help="the same seed and start: the same traffic")
@click.option("--collector", "collector_url", help="default: http://127.0.0.1:PARALLAX_COLLECTOR_PORT")
@click.option("--truth", "truth_path", type=click.Path(dir_okay=False, path_type=Path),
              help="the ground truth, .jsonl or .parquet (default: var/generate/truth-TIME-seedN.jsonl); "
                   "the summary goes beside it as NAME.summary.json")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 64), help="concurrent requests")
@click.option("--bots", default=0.03, show_default=True, type=click.FloatRange(0, 1), help="share of visitors")
@click.option("--returning", default=0.25, show_default=True, type=click.FloatRange(0, 1),
              help="share of visits by a visitor coming back (more than 30 minutes later)")
@click.option("--late", default=0.02, show_default=True, type=click.FloatRange(0, 1),
              help="share of visits delivered minutes to hours after they happened")
@click.option("--duplicates", default=0.02, show_default=True, type=click.FloatRange(0, 1),
              help="share of requests sent twice with the same event ids")
@click.option("--cookieless", is_flag=True,
              help="send no visitor_id: the collector derives it (a visitor token goes in the User-Agent)")
@click.option("--no-register", is_flag=True, help="do not touch Cassandra: the sites must exist")
@click.pass_obj
def generate(settings: Settings, n_sites: int, prefix: str, rate: float, as_fast: bool, events: int | None,
             duration: float | None, window: str, seed: int, collector_url: str | None, truth_path: Path | None,
             workers: int, bots: float, returning: float, late: float, duplicates: float, cookieless: bool,
             no_register: bool) -> None:
    """Send realistic visits to N sites through the collector (POST /api/collect) and write
    the ground truth: every event the collector acknowledged, and a summary per site."""
    try:
        config = Config(
            collector=collector_url or f"http://127.0.0.1:{settings.collector.port}", sites=n_sites, prefix=prefix,
            rate=0.0 if as_fast else rate, events=events, duration=duration, window_s=parse_duration(window),
            seed=seed, truth=truth_path, workers=workers,
            mix=Mix(bots=bots, returning=returning, late=late, duplicates=duplicates),
            explicit_ids=not cookieless, register=not no_register)
        sys.exit(cli_run(settings, config))
    except ValueError as exc:
        fail(exc)


@click.command()
@click.argument("site_id")
@click.option("--url", help="serving layer URL (default: 127.0.0.1 and PARALLAX_SERVING_PORT)")
@click.option("--token", envvar="PARALLAX_TOKEN", required=True,
              help="an API token of a user who may see the site (`parallax token create`); or PARALLAX_TOKEN")
@click.pass_obj
def watch(settings: Settings, site_id: str, url: str | None, token: str) -> None:
    """Print the live metric pushes of one site, and the caller's notifications, as a
    dashboard receives them."""
    url = url or f"http://127.0.0.1:{settings.serving.port}"
    client = socketio.Client(reconnection=False)

    @client.on("subscribed")
    def _subscribed(data: dict) -> None:
        click.echo(f"subscribed to {data['site']} on {url}; waiting for updates (Ctrl-C to stop)")

    @client.on("error")
    def _error(data: dict) -> None:
        click.echo(f"refused: {data.get('error')}", err=True)
        client.disconnect()

    @client.on("access_ended")
    @client.on("unsubscribed")
    def _ended(data: dict) -> None:
        click.echo(f"access ended: {data.get('reason')}", err=True)
        client.disconnect()

    @client.on("metrics")
    def _metrics(data: dict) -> None:
        for b in data["buckets"]:
            click.echo(f"{data['site']}  {b['start']}  pageviews={b['pageviews']:<6} visitors={b['visitors']}")

    @client.on("notification")
    def _notification(data: dict) -> None:
        click.echo(f"NOTIFICATION {data['created_at']}  {data['title']}  ({data['values'].get('why', '')})")

    refusal: list[dict] = []
    client.on("connect_error", refusal.append)
    try:
        client.connect(url, transports=["websocket"], wait_timeout=10, auth={"token": token})
    except socketio.exceptions.ConnectionError as exc:
        reason = refusal[0].get("message") if refusal and isinstance(refusal[0], dict) else exc
        fail(f"cannot connect to {url}: {reason}")
    client.emit("subscribe", {"site": site_id})
    try:
        client.wait()
    except KeyboardInterrupt:
        client.disconnect()
