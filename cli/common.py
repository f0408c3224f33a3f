"""What the subcommands share: a failure's message, a registry on a Cassandra session."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click

from infra.clients import cassandra_session
from infra.settings import Settings
from store.accounts import Accounts
from store.registry import Registry


def fail(exc: Exception | str) -> NoReturn:
    click.echo(click.style(f"error: {exc}", fg="red"), err=True)
    sys.exit(1)


@contextmanager
def registry(settings: Settings) -> Iterator[Registry]:
    """The sites and goals, on a session shut down afterwards."""
    session = cassandra_session(settings, settings.cassandra.keyspace)
    try:
        yield Registry(session, settings.cassandra.keyspace)
    finally:
        session.cluster.shutdown()


@contextmanager
def accounts(settings: Settings) -> Iterator[Accounts]:
    """The users, memberships and tokens, on a session shut down afterwards."""
    session = cassandra_session(settings, settings.cassandra.keyspace)
    try:
        yield Accounts(session, settings.cassandra.keyspace)
    finally:
        session.cluster.shutdown()
