"""Where a visit came from: the referrer source and UTM tags of an event, in plain Python.
A contract between the collector, which fills these fields, and the views, which group
by them.

The collector classifies each event once, when it enriches it, and writes the result into
the event (``referrer_source``, ``utm_source``, ``utm_medium``, ``utm_campaign``); both
Spark layers then group by those fields instead of parsing URLs again. Events archived
before the collector did this lack the fields, and ``views.transforms`` derives them with a
Spark expression of the same rule (the sources tests of ``tests/unit`` and ``tests/stack``
hold the two to the same answers).

The rule:
- **campaign**: the page's URL carries ``utm_source`` or ``gclid`` (a tagged link);
- **direct**: no referrer (typed, bookmarked, or a referrer policy hid it);
- **internal**: the referrer is the page's own host (a reload, a new tab);
- **search** / **social**: the referrer's host is one of ``SEARCH_HOSTS`` / ``SOCIAL_HOSTS``
  or a subdomain of one ("google." matches google.fr and www.google.co.uk);
- **other sites**: any other referrer.

UTM values are URL-decoded ("spring%20sale" and "spring+sale" are "spring sale"); the
first of repeated parameters counts; a missing or empty one is "(none)".
"""
from __future__ import annotations

from functools import lru_cache
from urllib.parse import parse_qs, urlsplit

# What a missing value reads as, in events and in views.
NONE_VALUE = "(none)"
SEARCH_HOSTS = ("google.", "bing.com", "duckduckgo.com", "yahoo.", "baidu.com", "yandex.", "ecosia.org",
                "qwant.com", "startpage.com", "search.brave.com", "kagi.com")
SOCIAL_HOSTS = ("facebook.com", "fb.com", "twitter.com", "t.co", "x.com", "linkedin.com", "lnkd.in", "reddit.com",
                "news.ycombinator.com", "instagram.com", "youtube.com", "pinterest.", "tiktok.com", "mastodon.",
                "threads.net", "bsky.app")

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign")
# Query parameters that mark a visit as a campaign's.
CAMPAIGN_PARAMETERS = ("utm_source", "gclid")
# What the collector adds to every event: these names, each a string.
SOURCE_FIELDS = ("referrer_source", *UTM_FIELDS)


def host(url: str | None) -> str | None:
    """The URL's host, lower-cased; None if it has none or is not a URL."""
    if not url:
        return None
    try:
        return urlsplit(url).hostname or None
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None


def _query(url: str) -> dict[str, list[str]]:
    try:
        return parse_qs(urlsplit(url).query)  # decoded; blank values left out
    except ValueError:
        return {}


def host_matches(host_name: str, suffixes: tuple[str, ...]) -> bool:
    """``host_name`` is one of ``suffixes`` or a subdomain of it; a suffix ending in "."
    ("google.") stands for that name under any top-level domain."""
    for suffix in suffixes:
        if suffix.endswith("."):
            if host_name.startswith(suffix) or "." + suffix in host_name:
                return True
        elif host_name == suffix or host_name.endswith("." + suffix):
            return True
    return False


def classify(url: str, referrer: str | None) -> str:
    """The referrer source of an event on page ``url`` reached from ``referrer``."""
    return _classify(_query(url), url, referrer)


def _classify(query: dict[str, list[str]], url: str, referrer: str | None) -> str:
    if any(p in query for p in CAMPAIGN_PARAMETERS):
        return "campaign"
    ref_host = host(referrer)
    if ref_host is None:
        return "direct"
    if ref_host == host(url):
        return "internal"
    if host_matches(ref_host, SEARCH_HOSTS):
        return "search"
    if host_matches(ref_host, SOCIAL_HOSTS):
        return "social"
    return "other sites"


def source_fields(url: str, referrer: str | None) -> dict[str, str]:
    """The ``SOURCE_FIELDS`` of an event: its referrer source and UTM tags, parsed once."""
    return dict(zip(SOURCE_FIELDS, _source_values(url, referrer)))


# A visit's events share their page and referrer: the collector parses each pair once.
@lru_cache(maxsize=4096)
def _source_values(url: str, referrer: str | None) -> tuple[str, ...]:
    query = _query(url)
    return (_classify(query, url, referrer), *(query[name][0] if name in query else NONE_VALUE for name in UTM_FIELDS))
