"""Where a visit came from: the acquisition channel and source of an event, and its UTM
tags, in plain Python. A contract between the collector, which fills these fields, and the
views, which group by them.

The collector classifies each event once, when it enriches it, and writes the result into
the event (``SOURCE_FIELDS``), stamped with ``RULE_VERSION``. The batch layer groups by those
fields, and classifies again, with this same function run by Spark
(``views.transforms.channels``), the events whose stamp is not the current rule's: events
archived before the collector classified, or before the rule or its source list changed.
So re-running the batch for a past day re-classifies it with the rule of today.

The rule is GA4's default channel group, evaluated in its documented order, with Parallax's
Internal and AI Assistants channels; README.md ("Acquisition channels") states it for
users, and tests/cases/channels.tsv holds both runtimes to it.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from dataclasses import astuple, dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, urlsplit

from schemas.sources import lists
from schemas.sources.lists import Source, SourceList

# What a missing value reads as, in events and in views.
NONE_VALUE = "(none)"
DIRECT = "Direct"
# A non-empty referrer that is not a URL, a host or a scheme without a host.
UNKNOWN_SOURCE = "(unknown)"
# A tagged visit (utm_medium, no utm_source) with no referrer to name its source.
NOT_SET = "(not set)"
CHANNELS = (
    "Direct", "Internal", "Cross-network", "Paid Shopping", "Paid Search", "Paid Social", "Paid Video", "Display",
    "Paid Other", "AI Assistants", "Organic Shopping", "Organic Social", "Organic Video", "Organic Search", "Email",
    "Affiliates", "Referral", "Audio", "SMS", "Mobile Push Notifications", "Unassigned",
)
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign")
# An event's acquisition: the rule's answer (``Acquisition``'s fields, in order).
ACQUISITION_FIELDS = ("channel", "source", *UTM_FIELDS)
# What the collector adds to every event: the acquisition and the rule's stamp, each a string.
SOURCE_FIELDS = (*ACQUISITION_FIELDS, "source_rule")
# Bumped when the rule's code changes; RULE_VERSION also changes with the source list.
RULE_REVISION = "2"

# Ad click ids the ad networks add to their links: the network, and the medium the click
# implies. fbclid is added to every link out of Facebook, ads or not: it names the source,
# not a paid medium.
CLICK_IDS = {
    "gclid": ("Google", "cpc"), "gbraid": ("Google", "cpc"), "wbraid": ("Google", "cpc"),
    "dclid": ("Google", "display"), "msclkid": ("Bing", "cpc"), "yclid": ("Yandex", "cpc"),
    "ttclid": ("TikTok", "cpc"), "twclid": ("Twitter", "cpc"), "li_fat_id": ("LinkedIn", "cpc"),
    "sccid": ("Snapchat", "cpc"), "fbclid": ("Facebook", None),
}
# GA4's patterns (case-insensitive, as GA4 matches them).
PAID_MEDIUM = re.compile(r"^(.*cp.*|ppc|retargeting|paid.*)$")
SHOPPING_CAMPAIGN = re.compile(r"^(.*(([^a-df-z]|^)shop|shopping).*)$")
DISPLAY_MEDIA = frozenset({"display", "banner", "expandable", "interstitial", "cpm"})
SOCIAL_MEDIA = frozenset({"social", "social-network", "social-media", "sm", "social network", "social media"})
EMAIL_TAGS = frozenset({"email", "e-mail", "e_mail", "e mail"})
REFERRAL_MEDIA = frozenset({"referral", "app", "link"})
# Referrers that say nothing of where the visit came from: no referrer.
_NO_REFERRER_SCHEMES = ("about:", "data:", "blob:", "javascript:", "file:", "chrome:", "edge:", "moz-extension:",
                        "chrome-extension:")
_BARE_HOST = re.compile(r"^[^\s/:?#]+\.[^\s/:?#]+(?::\d+)?(?:[/?#]\S*)?$")


@lru_cache(maxsize=1)
def source_list() -> SourceList:
    return lists.load()


def _rule_version() -> str:
    data = b"".join(path.read_bytes() for path in lists.data_files())
    return RULE_REVISION + "." + hashlib.sha256(data).hexdigest()[:10]


# The stamp of events classified by this rule and this source list.
RULE_VERSION = _rule_version()


@dataclass(frozen=True)
class Acquisition:
    channel: str
    source: str
    utm_source: str = NONE_VALUE
    utm_medium: str = NONE_VALUE
    utm_campaign: str = NONE_VALUE

    def values(self) -> tuple[str, ...]:
        """The answer in ``ACQUISITION_FIELDS``' order."""
        return astuple(self)

    def fields(self) -> dict[str, str]:
        return {**dict(zip(ACQUISITION_FIELDS, self.values())), "source_rule": RULE_VERSION}


@dataclass(frozen=True)
class Referrer:
    kind: str  # "none", "web", "app" or "unknown"
    host: str = ""  # ASCII (IDNA), lower-case, no trailing dot; the app's id for "app"
    path: str = ""


def _ascii_host(host: str) -> str:
    host = host.lower().rstrip(".")
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _display_host(host: str) -> str:
    """A host as people read it: Unicode, without "www."."""
    if "xn--" in host:
        try:
            host = host.encode("ascii").decode("idna")
        except UnicodeError:
            pass
    return host.removeprefix("www.")


def parse_referrer(referrer: str | None) -> Referrer:
    ref = (referrer or "").strip()
    if not ref or ref.lower().startswith(_NO_REFERRER_SCHEMES):
        return Referrer("none")
    scheme, sep, _ = ref.partition("://")
    if not sep:
        ref = ref.removeprefix("//")
        if not _BARE_HOST.fullmatch(ref):
            return Referrer("unknown")
        scheme, ref = "http", "http://" + ref  # a host without its scheme ("www.google.com")
    scheme = scheme.lower()
    if scheme not in ("http", "https", "android-app"):
        return Referrer("unknown")
    try:
        parts = urlsplit(ref)
        host = parts.hostname
    except ValueError:
        return Referrer("unknown")
    if not host:
        return Referrer("unknown")
    return Referrer("app" if scheme == "android-app" else "web", _ascii_host(host), parts.path)


def _tags(query: str) -> tuple[dict[str, str], str | None]:
    """The page URL's UTM tags (names in any case, values decoded; the first of a repeated
    one counts, and an empty one is missing) and the ad click id that counts (the first
    of ``CLICK_IDS`` present)."""
    first: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        first.setdefault(name.lower(), value.strip())
    tags = {name: first[name] for name in UTM_FIELDS if first.get(name)}
    click = next((name for name in CLICK_IDS if first.get(name)), None)
    return tags, click


@lru_cache(maxsize=1024)
def _own_domains(domains: frozenset[str]) -> tuple[str, ...]:
    """The site's registered domains without "www." or a port: each and its subdomains
    are the site's."""
    hosts = {_ascii_host(d.rsplit(":", 1)[0] if d.count(":") == 1 else d).removeprefix("www.") for d in domains}
    return tuple(h for h in hosts if h)


def _is_own(host: str, page_host: str | None, domains: frozenset[str]) -> bool:
    host = host.removeprefix("www.")
    if page_host and host == _ascii_host(page_host).removeprefix("www."):
        return True
    return any(host == d or host.endswith("." + d) for d in _own_domains(domains))


@lru_cache(maxsize=8192)
def _referrer_entry(referrer: str | None) -> tuple[Referrer, Source | None]:
    """The referrer, parsed, and its entry in the source list (most visits come from a
    few referrers: each is looked up once)."""
    ref = parse_referrer(referrer)
    if ref.kind == "web":
        return ref, source_list().host(ref.host, ref.path)
    if ref.kind == "app":
        return ref, source_list().app(ref.host)
    return ref, None


def classify(url: str, referrer: str | None, domains: Collection[str] = ()) -> Acquisition:
    """The channel, source and UTM tags of an event on page ``url`` reached from
    ``referrer``, on a site of registered ``domains``."""
    # The collector's domains are a frozenset already: frozenset() of one returns it as is.
    return _classify(url, referrer, frozenset(domains))


# A visit's events share their page and referrer: the collector classifies each pair once.
@lru_cache(maxsize=8192)
def _classify(url: str, referrer: str | None, domains: frozenset[str]) -> Acquisition:
    try:
        page = urlsplit(url)
        page_host, query = page.hostname, page.query
    except ValueError:
        page_host, query = None, ""
    tags, click = _tags(query)
    utm = {name: tags.get(name, NONE_VALUE) for name in UTM_FIELDS}
    ref, found = _referrer_entry(referrer)
    known = source_list()
    tagged = "utm_source" in tags or "utm_medium" in tags or click is not None
    if not tagged:
        if ref.kind == "none":
            return Acquisition("Direct", DIRECT, **utm)
        if found is lists.RETURN or (ref.kind == "web" and _is_own(ref.host, page_host, domains)):
            return Acquisition("Internal", _display_host(ref.host), **utm)
    if found is not None and found.category not in lists.CATEGORIES:
        found = None  # an ordinary site the vendored list names, or a return page with tags

    # The source: the utm_source tag, else the ad network of a click id, else the referrer.
    click_network, click_medium = CLICK_IDS[click] if click else (None, None)
    if "utm_source" in tags:
        named = known.named(tags["utm_source"])
        source, category = (named.name, named.category) if named else (tags["utm_source"], None)
    elif found is not None:
        source, category = found.name, found.category
    elif click_network:
        named = known.named(click_network)
        source, category = click_network, named.category if named else None
    elif ref.kind in ("web", "app"):
        source, category = (ref.host if ref.kind == "app" else _display_host(ref.host)), None
    elif ref.kind == "unknown":
        source, category = UNKNOWN_SOURCE, None
    else:
        source, category = NOT_SET, None
    medium = tags.get("utm_medium", click_medium or "").lower()
    campaign = tags.get("utm_campaign", "").lower()
    channel = _channel(source.lower(), category, medium, campaign, referred=ref.kind in ("web", "app"),
                       tagged=tagged)
    return Acquisition(channel, source, **utm)


def _channel(source: str, category: str | None, medium: str, campaign: str, *, referred: bool, tagged: bool) -> str:
    """GA4's default channel group, in its order, on lower-case source, medium and campaign;
    ``category``: the source's in the source list. Direct and Internal are decided before."""
    paid = bool(PAID_MEDIUM.match(medium)) if medium else False
    shopping = category == "shopping" or bool(SHOPPING_CAMPAIGN.match(campaign))
    if "cross-network" in campaign:
        return "Cross-network"
    if shopping and paid:
        return "Paid Shopping"
    if paid and category in ("search", "social", "video"):
        return {"search": "Paid Search", "social": "Paid Social", "video": "Paid Video"}[category]
    if medium in DISPLAY_MEDIA:
        return "Display"
    if paid:
        return "Paid Other"
    if category == "ai":
        return "AI Assistants"
    if shopping:
        return "Organic Shopping"
    if category == "social" or medium in SOCIAL_MEDIA:
        return "Organic Social"
    if category == "video" or "video" in medium:
        return "Organic Video"
    if category == "search" or medium == "organic":
        return "Organic Search"
    if category == "email" or source in EMAIL_TAGS or medium in EMAIL_TAGS:
        return "Email"
    if medium in ("affiliate", "affiliates"):
        return "Affiliates"
    if medium in REFERRAL_MEDIA or (referred and not tagged):
        return "Referral"
    if medium == "audio":
        return "Audio"
    if source == "sms" or medium == "sms":
        return "SMS"
    if medium.endswith("push") or "mobile" in medium or "notification" in medium or source == "firebase":
        return "Mobile Push Notifications"
    return "Unassigned"


def source_fields(url: str, referrer: str | None, domains: Collection[str] = ()) -> dict[str, str]:
    """The ``SOURCE_FIELDS`` of an event: its channel, source, UTM tags and the rule's stamp."""
    return classify(url, referrer, domains).fields()
