"""The source list: which hosts are search engines, social networks, video sites, webmail,
shopping sites and AI assistants, from the vendored Matomo list (``data/matomo``, CC0-1.0)
and Parallax's own additions (``data/local.yml``), which take priority. A source (a name)
is of one category: the first it is listed with.

A host is looked up exactly, then with its subdomains dropped one at a time
(``l.facebook.com`` -> ``facebook.com``), never by "the host contains this label"; a host
whose first label is ``not_inherited`` (``mail.``, ``docs.`` ...) stops that walk, and the
``returns`` and ``not_sources`` entries are found before any source.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).resolve().parent / "data"
MATOMO = DATA / "matomo"
# The vendored files, by the category their entries are of, in priority order: a host in
# two of them (chatgpt.com is a search engine and an AI assistant there) is of the first.
MATOMO_FILES = {"ai": "AIAssistants.yml", "social": "Socials.yml", "search": "SearchEngines.yml"}
LOCAL_FILE = DATA / "local.yml"
CATEGORIES = ("search", "social", "video", "email", "shopping", "ai")
# `{}` as a top-level domain also stands for these two-label ones (com.au, co.uk, ...), as
# the Matomo list documents.
COMPOUND_TLD_FIRST = frozenset({"com", "org", "net", "co", "it", "edu", "ac", "gov", "ne", "or"})
_LABEL = r"(?:\{\}|[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)"
_PATTERN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")


def data_files(matomo: Path = MATOMO, local: Path = LOCAL_FILE) -> tuple[Path, ...]:
    """The files the list is read from (and the rule's version is a digest of)."""
    return (local, *(matomo / file for file in MATOMO_FILES.values()))


class SourceListError(ValueError):
    """The source list's files do not have the shape this module reads."""


@dataclass(frozen=True)
class Source:
    name: str
    category: str  # one of CATEGORIES


# What a host can be besides a source: a page visitors come back from (sign-in, payment),
# or an ordinary site the vendored list mistakes for a source.
RETURN = Source("(return)", "return")
NOT_A_SOURCE = Source("(not a source)", "none")


@dataclass
class SourceList:
    """Host patterns -> Source, in priority order (the first entry of a pattern wins)."""
    patterns: dict[str, list[tuple[str, Source]]] = field(default_factory=dict)
    names: dict[str, Source] = field(default_factory=dict)
    not_inherited: frozenset[str] = frozenset()
    # Entries of the files this module cannot use (reported by `parallax sources check`).
    skipped: list[str] = field(default_factory=list)

    def add(self, entry: str, source: Source) -> None:
        host, _, path = entry.strip().lower().partition("/")
        if not _PATTERN.fullmatch(host):
            self.skipped.append(entry)
            return
        paths = self.patterns.setdefault(host, [])
        prefix = "/" + path if path else ""
        if all(p != prefix for p, _ in paths):
            paths.append((prefix, source))
            paths.sort(key=lambda item: -len(item[0]))  # the longest path first, "" (any) last

    def host(self, host: str, path: str = "") -> Source | None:
        """The source of a referrer host (ASCII, lower-case, no trailing dot)."""
        labels = host.split(".")
        for i in range(len(labels) - 1):
            if i and labels[i - 1] in self.not_inherited:
                return None
            for key in _keys(labels[i:]):
                for prefix, source in self.patterns.get(key, ()):
                    if path.startswith(prefix):
                        return source
        return None

    def app(self, package: str) -> Source | None:
        """The source of an Android app's ``android-app://`` referrer: its id, exactly."""
        for prefix, source in self.patterns.get(package, ()):
            if not prefix:
                return source
        return None

    def named(self, value: str) -> Source | None:
        """The source a utm_source value names: a source's name or alias (any case), or one
        of its hosts ("chatgpt.com", as ChatGPT tags its links)."""
        value = value.strip().lower()
        found = self.names.get(value)
        if found is None and "." in value:
            found = self.host(value.removeprefix("www."))
            found = found if found is not None and found.category in CATEGORIES else None
        return found

    @cached_property
    def sources(self) -> dict[str, Source]:
        """Every source by name (the first category it was listed with)."""
        out: dict[str, Source] = {}
        for entries in self.patterns.values():
            for _, source in entries:
                if source.category in CATEGORIES:
                    out.setdefault(source.name, source)
        return out


def _keys(labels: list[str]) -> Iterator[str]:
    """The patterns a host of these labels matches, the most specific first: itself, any
    one label as `{}`, then its top-level domain as `{}`."""
    yield ".".join(labels)
    for j in range(len(labels) - 1):
        yield ".".join([*labels[:j], "{}", *labels[j + 1:]])
    yield ".".join(labels[:-1]) + ".{}"
    if len(labels) >= 3 and labels[-2] in COMPOUND_TLD_FIRST:
        yield ".".join(labels[:-2]) + ".{}"


def _hosts_of(name: str, value: Any, where: str) -> Iterable[str]:
    """The host entries of one source in the Matomo files: a list of hosts (socials, AI),
    or a list of configurations with "urls" (search engines)."""
    if not isinstance(value, list):
        raise SourceListError(f"{where}: {name!r} is not a list")
    for item in value:
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict) and isinstance(item.get("urls"), list):
            yield from (u for u in item["urls"] if isinstance(u, str))
        else:
            raise SourceListError(f"{where}: an entry of {name!r} is neither a host nor a configuration with urls")


def _yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SourceListError(f"{path.name}: cannot read it: {exc}") from exc
    if not isinstance(loaded, dict):
        raise SourceListError(f"{path.name}: not a mapping")
    return loaded


def load(matomo: Path = MATOMO, local: Path = LOCAL_FILE) -> SourceList:
    """The source list from its files; raises SourceListError if they are not as expected."""
    out = SourceList()
    extra = _yaml(local)
    for entry in extra.get("returns", []):
        out.add(entry, RETURN)
    for entry in extra.get("not_sources", []):
        out.add(entry, NOT_A_SOURCE)
    out.not_inherited = frozenset(str(label).lower() for label in extra.get("not_inherited", []))
    for category in CATEGORIES:
        for name, hosts in (extra.get(category) or {}).items():
            for host in _hosts_of(name, hosts, local.name):
                out.add(host, Source(str(name), category))
    for category, file in MATOMO_FILES.items():
        for name, value in _yaml(matomo / file).items():
            for host in _hosts_of(str(name), value, file):
                out.add(host, Source(str(name), category))
    # A source is of one category wherever it is listed: the first it is listed with (the
    # local list, then the files' priority). Facebook is also a search engine in the
    # vendored list, and www.facebook.com one of its hosts there; it is a social network.
    canonical = out.sources
    out.patterns = {key: [(path, canonical.get(source.name, source)) for path, source in entries]
                    for key, entries in out.patterns.items()}
    for source in canonical.values():
        out.names.setdefault(source.name.lower(), source)
    for alias, name in (extra.get("aliases") or {}).items():
        if name not in out.sources:
            raise SourceListError(f"{local.name}: alias {alias!r} names no source ({name!r})")
        out.names[str(alias).lower()] = out.sources[name]
    if sum(1 for s in out.sources.values() if s.category == "search") < 100:
        raise SourceListError(f"{MATOMO_FILES['search']}: fewer than 100 search engines; is it the right file?")
    return out
