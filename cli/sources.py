"""`parallax sources`: the vendored source list the acquisition channels are decided from."""
from __future__ import annotations

import json
from pathlib import Path

import click
import requests

from cli.common import fail
from schemas.sources import RULE_VERSION, lists
from tools import source_list


@click.group()
def sources() -> None:
    """The source list (search engines, social networks, AI assistants, ...)."""


@sources.command("check")
def check() -> None:
    """What the source list holds: sources per category, the pinned commit, skipped entries."""
    try:
        loaded = lists.load()
    except lists.SourceListError as exc:
        fail(exc)
    click.echo(json.dumps({"pinned": source_list.pinned(), "rule_version": RULE_VERSION,
                           "sources": source_list.summary(loaded), "hosts": len(loaded.patterns),
                           "skipped": loaded.skipped}, indent=2))


@sources.command("update")
@click.option("--ref", default="master", show_default=True, help="the Matomo list's commit, tag or branch")
@click.option("--from", "checkout", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="copy from a local checkout of the list instead of downloading")
def update(ref: str, checkout: Path | None) -> None:
    """Replace the vendored Matomo list by its version at REF (or a checkout's); refused,
    and nothing written, unless the files load as a source list. Re-run the batch for past
    days afterwards to re-classify them."""
    try:
        pin, counts = source_list.update(ref=ref, checkout=checkout)
    except (lists.SourceListError, requests.RequestException) as exc:
        fail(f"source list not updated: {exc}")
    click.echo(json.dumps({"commit": pin.commit, "committed": pin.committed, **counts}, indent=2))
    click.echo("re-run the batch for the days to re-classify: parallax batch --date YYYY-MM-DD")
