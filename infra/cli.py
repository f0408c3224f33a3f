"""The `parallax` command: run the stack, the pipeline's processes and the demo."""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from infra.settings import load_settings


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
    ctx.obj = load_settings()
    from infra import airflow_env

    airflow_env.apply(ctx.obj)


def _fail(exc: Exception) -> None:
    click.echo(click.style(f"error: {exc}", fg="red"), err=True)
    sys.exit(1)


@main.group()
def stack() -> None:
    """The local Kafka, Cassandra (and Airflow) processes."""


@stack.command("up")
@click.option("--airflow", "with_airflow", is_flag=True, help="also start Airflow standalone")
@click.pass_obj
def stack_up(settings, with_airflow: bool) -> None:
    """Fetch (once) and start Kafka and Cassandra; create topics and tables. Idempotent."""
    from infra import stack as st

    try:
        st.up(settings, with_airflow=with_airflow)
    except Exception as exc:
        _fail(exc)


@stack.command("fetch")
@click.pass_obj
def stack_fetch(settings) -> None:
    """Fetch the jars (once, into the cache) and prepare Airflow's database, starting nothing."""
    from infra import stack as st

    try:
        st.fetch(settings)
    except Exception as exc:
        _fail(exc)


@stack.command("down")
@click.pass_obj
def stack_down(settings) -> None:
    """Stop exactly what `stack up` started."""
    from infra import stack as st

    st.down(settings)


@stack.command("status")
@click.pass_obj
def stack_status(settings) -> None:
    from infra import stack as st

    states = st.status(settings)
    for name, state in states.items():
        click.echo(f"{name:10s} {state}")
    sys.exit(0 if states["kafka"] == states["cassandra"] == "ready" else 3)


@main.group()
def site() -> None:
    """Register and list sites."""


@site.command("add")
@click.argument("site_id")
@click.option("--domain", "domains", multiple=True, required=True, help="a domain the tracker runs on (repeatable)")
@click.option("--timezone", "tz", default="UTC", show_default=True, help="IANA time zone of the site's days")
@click.pass_obj
def site_add(settings, site_id: str, domains: tuple[str, ...], tz: str) -> None:
    from infra.clients import cassandra_session
    from infra.sites import add_site

    session = cassandra_session(settings, settings.keyspace)
    try:
        add_site(session, settings.keyspace, site_id, list(domains), tz)
    except ValueError as exc:
        _fail(exc)
    finally:
        session.cluster.shutdown()
    click.echo(f"site {site_id} registered for {', '.join(domains)} ({tz})")


@site.command("list")
@click.pass_obj
def site_list(settings) -> None:
    from infra.clients import cassandra_session
    from infra.sites import list_sites

    session = cassandra_session(settings, settings.keyspace)
    for r in list_sites(session, settings.keyspace):
        click.echo(f"{r.site:24s} {','.join(sorted(r.domains or [])):40s} {r.timezone}")
    session.cluster.shutdown()


@main.group()
def goal() -> None:
    """Goals: the page visits and custom events that count as conversions."""


@goal.command("add")
@click.argument("site_id")
@click.argument("name")
@click.option("--page", help="a path pattern: * within a segment, ** across (e.g. /signup/*/done)")
@click.option("--event", help="a custom event name (e.g. signup)")
@click.pass_obj
def goal_add(settings, site_id: str, name: str, page: str | None, event: str | None) -> None:
    """Add (or replace) goal NAME of SITE_ID: visits of --page, or custom --event."""
    from infra.clients import cassandra_session
    from infra.sites import add_goal
    from views.goals import Goal

    if (page is None) == (event is None):
        _fail(ValueError("give exactly one of --page PATTERN or --event NAME"))
    goal = Goal(site_id, name, "page" if page else "event", page or event)
    session = cassandra_session(settings, settings.keyspace)
    try:
        add_goal(session, settings.keyspace, goal)
    except ValueError as exc:
        _fail(exc)
    finally:
        session.cluster.shutdown()
    click.echo(f"goal {name!r} of {site_id}: {goal.kind} {goal.pattern!r}. The speed layer counts conversions from "
               f"its next goal refresh (every {settings.goals_refresh_s:.0f} s); for past days run "
               "`parallax batch --date YYYY-MM-DD`.")


@goal.command("list")
@click.argument("site_id", required=False)
@click.pass_obj
def goal_list(settings, site_id: str | None) -> None:
    from infra.clients import cassandra_session
    from views.goals import read_goals

    session = cassandra_session(settings, settings.keyspace)
    try:
        for g in read_goals(session, settings.keyspace):
            if site_id in (None, g.site):
                click.echo(f"{g.site:24s} {g.name:24s} {g.kind:6s} {g.pattern}")
    finally:
        session.cluster.shutdown()


@goal.command("remove")
@click.argument("site_id")
@click.argument("name")
@click.pass_obj
def goal_remove(settings, site_id: str, name: str) -> None:
    from infra.clients import cassandra_session
    from infra.sites import remove_goal

    session = cassandra_session(settings, settings.keyspace)
    try:
        found = remove_goal(session, settings.keyspace, site_id, name)
    finally:
        session.cluster.shutdown()
    if not found:
        _fail(ValueError(f"site {site_id} has no goal {name!r}"))
    click.echo(f"goal {name!r} of {site_id} removed (views computed before keep their conversions)")


def _gunicorn(app: str, port: int, workers: int, threads: int, config: str | None = None,
              access_log: bool = True) -> None:
    # The access log leaves out the client's address and user agent: no raw IP is stored.
    # No control socket: its default path is shared by every gunicorn of the user.
    log = ["--access-logfile", "-", "--access-logformat", '%(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'] \
        if access_log else []
    argv = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--threads", str(threads), *log, "--no-control-socket",
            "--graceful-timeout", "10", *(["--config", config] if config else []), app]
    os.execv(sys.executable, argv)


@main.command()
@click.option("--port", type=int, help="default: PARALLAX_COLLECTOR_PORT or 8001")
@click.option("--workers", default=2, show_default=True)
@click.option("--debug", is_flag=True, help="Flask's development server instead of gunicorn")
@click.option("--access-log", is_flag=True,
              help="a line per request on stdout (off by default: ~10% of the collector's CPU at full rate; "
                   "/metrics counts requests by status)")
@click.pass_obj
def collect(settings, port: int | None, workers: int, debug: bool, access_log: bool) -> None:
    """Run the collector (POST /api/collect) under gunicorn."""
    port = port or settings.collector_port
    if debug:
        from collector.app import create_app

        create_app(settings).run(host="127.0.0.1", port=port, debug=True)
        return
    # The hooks gather every worker's Prometheus samples for /metrics (multiprocess mode).
    # 12 threads a worker: a request holds its thread while Kafka acknowledges (10 ms of
    # linger and more), so 2 x 8 threads capped the rate below what the CPU allows.
    _gunicorn("collector.wsgi:app", port, workers, 12, config="python:collector.gunicorn_conf", access_log=access_log)


@main.group()
def invalid() -> None:
    """What the collector rejected: Kafka `events.invalid`."""


@invalid.command("tail")
@click.option("--site", help="only this site's records")
@click.option("--reason", help="only this reason (e.g. schema_violation, clock_skew, origin_not_allowed)")
@click.option("-n", "count", default=20, show_default=True, help="how many of the last records to show")
@click.option("-f", "--follow", is_flag=True, help="then print new records as they arrive (Ctrl-C stops)")
@click.pass_obj
def invalid_tail(settings, site: str | None, reason: str | None, count: int, follow: bool) -> None:
    """Print the last records of `events.invalid`: time, site, reason, errors, the event (truncated)."""
    from collector.invalid import tail

    try:
        shown = tail(settings, click.echo, site=site, reason=reason, n=count, follow=follow)
    except KeyboardInterrupt:
        return
    except Exception as exc:
        _fail(exc)
    if not shown:
        click.echo("no matching records in events.invalid", err=True)


@main.command()
@click.option("--port", type=int, help="default: PARALLAX_SERVING_PORT or 8000")
@click.pass_obj
def serve(settings, port: int | None) -> None:
    """Run the serving layer (reports + Socket.IO) under gunicorn (one worker: rooms live in it)."""
    _gunicorn("serving_layer.wsgi:app", port or settings.serving_port, 1, 64)


@main.command()
@click.option("--rebuild", is_flag=True,
              help="move the views query's checkpoint aside and rebuild the speed views from Kafka")
@click.pass_obj
def speed(settings, rebuild: bool) -> None:
    """Run the speed layer's streaming queries until interrupted."""
    from speed_layer.job import run

    sys.exit(run(settings, rebuild=rebuild))


@main.command()
@click.option("--date", "day", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="the day to recompute, in each site's time zone")
@click.pass_obj
def batch(settings, day) -> None:
    """Recompute one day's exact views and move the batch boundary, for every site whose
    day has ended in its zone (the DAG submits the same job)."""
    from batch_layer.daily_views import main as batch_main

    sys.exit(batch_main(["--day", day.date().isoformat()]))


@main.command()
@click.option("--rate", default=5.0, show_default=True, help="events per second of generated live traffic")
@click.option("--no-airflow", is_flag=True, help="run the batch job directly instead of through Airflow")
@click.pass_obj
def demo(settings, rate: float, no_airflow: bool) -> None:
    """The live demo: stack, collector, speed and serving layers, a sample site to click
    around, generated traffic, a nightly run."""
    from infra.demo import run_demo

    sys.exit(run_demo(settings, rate=rate, with_airflow=not no_airflow))


@main.command()
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
def generate(settings, n_sites: int, prefix: str, rate: float, as_fast: bool, events: int | None,
             duration: float | None, window: str, seed: int, collector_url: str | None, truth_path: Path | None,
             workers: int, bots: float, returning: float, late: float, duplicates: float, cookieless: bool,
             no_register: bool) -> None:
    """Send realistic visits to N sites through the collector (POST /api/collect) and write
    the ground truth: every event the collector acknowledged, and a summary per site."""
    from infra.generator.catalog import Mix
    from infra.generator.run import Config, cli_run, parse_duration

    try:
        config = Config(
            collector=collector_url or f"http://127.0.0.1:{settings.collector_port}", sites=n_sites, prefix=prefix,
            rate=0.0 if as_fast else rate, events=events, duration=duration, window_s=parse_duration(window),
            seed=seed, truth=truth_path, workers=workers,
            mix=Mix(bots=bots, returning=returning, late=late, duplicates=duplicates),
            explicit_ids=not cookieless, register=not no_register)
        sys.exit(cli_run(settings, config))
    except ValueError as exc:
        _fail(exc)


@main.command()
@click.argument("site_id")
@click.option("--url", help="serving layer URL (default: 127.0.0.1 and PARALLAX_SERVING_PORT)")
@click.pass_obj
def watch(settings, site_id: str, url: str | None) -> None:
    """Print the live metric pushes of one site, as a dashboard receives them."""
    import socketio

    url = url or f"http://127.0.0.1:{settings.serving_port}"
    client = socketio.Client()

    @client.on("subscribed")
    def _subscribed(data):
        click.echo(f"subscribed to {data['site']} on {url}; waiting for updates (Ctrl-C to stop)")

    @client.on("metrics")
    def _metrics(data):
        for b in data["buckets"]:
            click.echo(f"{data['site']}  {b['start']}  pageviews={b['pageviews']:<6} visitors={b['visitors']}")

    client.connect(url, transports=["websocket"], wait_timeout=10)
    client.emit("subscribe", {"site": site_id})
    try:
        client.wait()
    except KeyboardInterrupt:
        client.disconnect()


@main.command("settings")
@click.pass_obj
def show_settings(settings) -> None:
    """Print the effective settings (from PARALLAX_* variables and defaults)."""
    click.echo(json.dumps(settings.describe(), indent=2))


if __name__ == "__main__":
    main()
