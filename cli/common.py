"""What the subcommands share: a failure's message, the registry and the accounts on a Cassandra session."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click

from infra.clients import cassandra_keyspace
from infra.settings import Settings
from store.accounts import AccountError, Accounts
from store.registry import Registry


def fail(exc: Exception | str) -> NoReturn:
    click.echo(click.style(f"error: {exc}", fg="red"), err=True)
    sys.exit(1)




@contextmanager
def registry(settings: Settings) -> Iterator[Registry]:
    """The sites and goals."""
    with cassandra_keyspace(settings) as session:
        yield Registry(session, settings.cassandra.keyspace)


@contextmanager
def accounts(settings: Settings) -> Iterator[Accounts]:
    """The users, memberships and tokens; a refused request (AccountError) ends the command
    with its message."""
    with cassandra_keyspace(settings) as session:
        try:
            yield Accounts(session, settings.cassandra.keyspace)
        except AccountError as exc:
            fail(exc)
