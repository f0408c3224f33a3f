"""README's "Acquisition channels", restated for tests as an independent computation.

Written only from README.md ("Reading a referrer", "Finding a host in the list", "The tags", "Source",
"Channel") and the data files in schemas/sources/data/, which it reads itself: it shares no code with
schemas/sources/, so tests can check the project's classification against this one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from encodings import idna
from functools import cache
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import yaml

DATA = Path(__file__).resolve().parent.parent / "schemas" / "sources" / "data"
LOCAL_CATEGORIES = ("search", "social", "video", "email", "shopping", "ai")
# Vendored files with the category of their entries, most preferred first (AI > Socials > SearchEngines).
MATOMO_FILES = (("AIAssistants.yml", "ai"), ("Socials.yml", "social"), ("SearchEngines.yml", "search"))

# README reading: "browser-internal referrers" are these browsers' and extensions' own schemes.
NO_REFERRER_SCHEMES = frozenset({
    "about", "data", "blob", "javascript", "file", "view-source", "chrome", "chrome-extension", "chrome-search",
    "chrome-native", "chrome-untrusted", "devtools", "edge", "brave", "opera", "vivaldi", "moz-extension",
    "resource", "safari-extension", "safari-web-extension", "ms-browser-extension",
})
SCHEME = re.compile(r"([a-z][a-z0-9+.-]*):")
SCHEMELESS = re.compile(r"[^\s/?#:@]+\.[^\s/?#:@]+(?::\d+)?(?:[/?#].*)?", re.S)
HOST = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
APP_ID = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)+")
# A list entry: dotted labels (or {}), at least two of them, maybe followed by a path.
ENTRY = re.compile(r"(?P<host>(?:[a-z0-9-]+|\{\})(?:\.(?:[a-z0-9-]+|\{\}))+)(?P<path>(?:/[^/\s]+)+/?)?")

# README reading: a `{}` ending an entry is a top-level domain, either one label (`fr`, `com`) or a
# compound one, i.e. a usual second-level label under a two-letter country code (`co.uk`, `com.au`);
# anywhere else `{}` is exactly one label.
COMPOUND_TLD = r"(?:ac|co|com|edu|gen|go|gob|gov|ltd|mil|ne|net|nic|nom|or|org|plc|sch)\.[a-z]{2}"
ONE_LABEL = r"[a-z0-9_-]+"

# (parameter, network, implied medium), in README's order, which is also which one counts when several are present.
# README reading: the ad click ids other than gclid/gbraid/wbraid/dclid imply medium `cpc` ("a paid medium").
CLICK_IDS = (
    ("gclid", "Google", "cpc"), ("gbraid", "Google", "cpc"), ("wbraid", "Google", "cpc"),
    ("dclid", "Google", "display"), ("msclkid", "Bing", "cpc"), ("yclid", "Yandex", "cpc"),
    ("ttclid", "TikTok", "cpc"), ("twclid", "Twitter", "cpc"), ("li_fat_id", "LinkedIn", "cpc"),
    ("sccid", "Snapchat", "cpc"), ("fbclid", "Facebook", ""),
)

PAID = re.compile(r"^(.*cp.*|ppc|retargeting|paid.*)$")
SHOPPING_CAMPAIGN = re.compile(r"^(.*(([^a-df-z]|^)shop|shopping).*)$")
DISPLAY_MEDIA = frozenset({"display", "banner", "expandable", "interstitial", "cpm"})
SOCIAL_MEDIA = frozenset({"social", "social-network", "social-media", "sm", "social network", "social media"})
EMAIL_WORDS = frozenset({"email", "e-mail", "e_mail", "e mail"})


# -- the list ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One host pattern of the list, maybe with a path, naming `value` (a source name, or True for `returns`)."""

    host: str
    path: str
    value: str | bool
    rank: int  # 0 = local.yml, then the Matomo files in preference order: the lowest wins for the same host
    regex: re.Pattern[str] | None  # for a host with `{}`

    def holds_for(self, host: str, path: str) -> bool:
        host_ok = self.regex.fullmatch(host) is not None if self.regex else host == self.host
        # README reading: "the referrer's path starts with it" is a plain string prefix, case-sensitive.
        return host_ok and path.startswith(self.path)


def pattern_regex(host: str) -> re.Pattern[str]:
    labels = host.split(".")
    parts = [re.escape(label) if label != "{}" else ONE_LABEL for label in labels[:-1]]
    last = labels[-1]
    parts.append(f"(?:{COMPOUND_TLD}|{ONE_LABEL})" if last == "{}" else re.escape(last))
    return re.compile(r"\.".join(parts))


class HostTable:
    """Host patterns: exact ones in a dict, `{}` ones as regular expressions."""

    def __init__(self) -> None:
        self.exact: dict[str, list[Entry]] = {}
        self.patterns: list[Entry] = []

    def add(self, raw: object, value: str | bool, rank: int) -> None:
        if not isinstance(raw, str):
            return
        m = ENTRY.fullmatch(raw.strip().lower())
        if m is None:  # e.g. Matomo's `android-app//com.google...`: not a plain host pattern
            return
        host, path = m["host"], m["path"] or ""
        if "{}" in host:
            self.patterns.append(Entry(host, path, value, rank, pattern_regex(host)))
        else:
            self.exact.setdefault(host, []).append(Entry(host, path, value, rank, None))

    def remove(self, host: str) -> None:
        self.exact.pop(host, None)
        self.patterns = [e for e in self.patterns if e.host != host]

    def at(self, host: str, path: str) -> Entry | None:
        """The entry for exactly this host, if any: the most preferred file, then the longest path, then
        an entry without `{}` over one with it."""
        found = [e for e in self.exact.get(host, []) + self.patterns if e.holds_for(host, path)]
        return min(found, key=lambda e: (e.rank, -len(e.path), e.regex is not None), default=None)

    def find(self, host: str, path: str, not_inherited: frozenset[str]) -> Entry | None:
        """README's "Finding a host in the list": exactly, then dropping subdomains one at a time."""
        labels = host.split(".")
        for i in range(len(labels) - 1):
            entry = self.at(".".join(labels[i:]), path)
            if entry is not None:
                return entry
            # README reading: a host whose first label never inherits stops the walk there, so neither its
            # parent nor any domain further up can lend it an entry (`x.docs.google.com` is not Google).
            if labels[i] in not_inherited:
                return None
        return None

    def app(self, app_id: str) -> Entry | None:
        """An app id is matched exactly: only an entry spelled as that id, no `{}`, no dropping."""
        return min(self.exact.get(app_id, []), key=lambda e: e.rank, default=None)


@dataclass
class SourceList:
    hosts: HostTable
    returns: HostTable
    not_inherited: frozenset[str]
    names: dict[str, tuple[str, str]]  # lower-cased name -> (name as written, category)
    aliases: dict[str, str]  # lower-cased alias -> name

    def source(self, entry: Entry) -> tuple[str, str]:
        return self.names[str(entry.value).lower()]


def _yaml(path: Path) -> dict:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


@cache
def source_list() -> SourceList:
    local = _yaml(DATA / "local.yml")
    hosts = HostTable()
    names: dict[str, tuple[str, str]] = {}
    # README reading: a source's category is the category of its name in the most preferred file that
    # names it (local.yml, then AI, Socials, SearchEngines), whichever entry found it. So YouTube is a
    # video site, and Facebook a social network even where Matomo's search-engine list has www.facebook.com.
    # A name spelled differently in two files ("StartPage", "Startpage") takes the preferred spelling.
    for category in LOCAL_CATEGORIES:
        for name, entries in (local.get(category) or {}).items():
            names.setdefault(str(name).lower(), (str(name), category))
            for raw in entries or ():
                hosts.add(raw, str(name), 0)
    for rank, (filename, category) in enumerate(MATOMO_FILES, start=1):
        for name, entries in _yaml(DATA / "matomo" / filename).items():
            names.setdefault(str(name).lower(), (str(name), category))
            for item in entries or ():
                urls = item.get("urls", []) if isinstance(item, dict) else [item]  # SearchEngines: configurations
                for raw in urls:
                    hosts.add(raw, str(name), rank)
    # README reading: `not_sources` hosts are taken out of the list, so a link from them is a Referral.
    for host in local.get("not_sources") or ():
        hosts.remove(str(host).lower())
    returns = HostTable()
    for raw in local.get("returns") or ():
        returns.add(raw, True, 0)
    return SourceList(
        hosts=hosts,
        returns=returns,
        not_inherited=frozenset(str(label).lower() for label in local.get("not_inherited") or ()),
        names=names,
        aliases={str(k).lower(): str(v) for k, v in (local.get("aliases") or {}).items()},
    )


# -- reading a referrer and a page URL ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Referrer:
    kind: str  # "none", "web", "app" or "unknown"
    host: str = ""  # the web host (ASCII, lower-case), or the app id
    path: str = ""


NO_REFERRER = Referrer("none")
UNKNOWN = Referrer("unknown")


def normalize_host(host: str | None) -> str | None:
    """Lower-cased, trailing dot dropped, international labels in punycode; None if not a host."""
    if not host:
        return None
    host = host.strip().lower().rstrip(".")
    if ":" in host:  # an IPv6 address (urlsplit leaves it without brackets)
        return host
    try:
        host = ".".join(label if label.isascii() else idna.ToASCII(label).decode("ascii") for label in host.split("."))
    except UnicodeError:
        return None
    return host if HOST.fullmatch(host) else None


def read_referrer(referrer: str | None) -> Referrer:
    text = (referrer or "").strip()
    if not text:
        return NO_REFERRER
    lower = text.lower()
    scheme = SCHEME.match(lower)
    if scheme and scheme[1] in NO_REFERRER_SCHEMES:
        return NO_REFERRER
    if lower.startswith("android-app://"):
        # README reading: the app id is the part after `android-app://` up to the next `/`, lower-cased.
        app_id = re.split(r"[/?#]", lower[len("android-app://"):], maxsplit=1)[0]
        return Referrer("app", app_id) if APP_ID.fullmatch(app_id) else UNKNOWN
    if scheme and lower[scheme.end():].startswith("//"):
        if scheme[1] not in ("http", "https"):
            return UNKNOWN
        to_split = text
    elif text.startswith("//") or SCHEMELESS.fullmatch(text):
        # README reading: a referrer without a scheme is read as a host only when it looks like one
        # (dotted labels, maybe a port and a path); anything else is `(unknown)`.
        to_split = "//" + text.removeprefix("//")
    else:
        return UNKNOWN
    try:
        parts = urlsplit(to_split)
        host = normalize_host(parts.hostname)
    except ValueError:
        return UNKNOWN
    return Referrer("web", host, parts.path) if host else UNKNOWN


def bare_host(host_and_port: str) -> str | None:
    """A registered domain or page host without its port, normalized like a referrer's host."""
    try:
        return normalize_host(urlsplit("//" + host_and_port.strip()).hostname)
    except ValueError:
        return None


def without_www(host: str) -> str:
    return host.removeprefix("www.")


def shown(host: str) -> str:
    """A host as README says sources show it: without `www.`, international labels in Unicode."""
    labels = [idna.ToUnicode(label) if label.startswith("xn--") else label for label in host.split(".")]
    return without_www(".".join(labels))


@dataclass(frozen=True)
class Tags:
    source: str  # decoded; "" when missing or empty
    medium: str
    campaign: str
    click: tuple[str, str] | None  # (network, implied medium) of the click id that counts
    page_host: str | None

    @property
    def tagged(self) -> bool:
        return bool(self.source or self.medium or self.click)


def read_tags(url: str) -> Tags:
    try:
        parts = urlsplit(url or "")
        page_host = normalize_host(parts.hostname)
    except ValueError:
        return Tags("", "", "", None, None)
    pairs = parse_qsl(parts.query, keep_blank_values=True, errors="replace")
    utm: dict[str, str] = {}
    exact: dict[str, str] = {}
    for key, value in pairs:
        utm.setdefault(key.lower(), value)  # the first of a repeated one counts, in any case
        exact.setdefault(key.lower(), value)
    # A tag or click id with an empty value counts as missing (it does not make the visit tagged).
    click = next(((network, medium) for key, network, medium in CLICK_IDS if exact.get(key)), None)
    return Tags(utm.get("utm_source", ""), utm.get("utm_medium", ""), utm.get("utm_campaign", ""), click, page_host)


# -- source and channel -------------------------------------------------------------------------------------------


def referrer_entry(ref: Referrer, sources: SourceList) -> Entry | None:
    if ref.kind == "web":
        return sources.hosts.find(ref.host, ref.path, sources.not_inherited)
    if ref.kind == "app":
        return sources.hosts.app(ref.host)
    return None


def tagged_source(tag: str, sources: SourceList) -> tuple[str, str | None]:
    """utm_source as a source's name or alias (any case) or one of its hosts becomes that name; else as tagged."""
    key = tag.strip().lower()
    if key in sources.names:
        return sources.names[key]
    if key in sources.aliases:
        name = sources.aliases[key]
        return sources.names.get(name.lower(), (name, None))
    # README reading: "one of its hosts" means a host the list finds as README's "Finding a host in the list"
    # does (so `www.facebook.com` and `google.co.uk` count), without a path; an app id matches exactly.
    host = normalize_host(key) if "." in key else None
    if host:
        entry = sources.hosts.find(host, "", sources.not_inherited) or sources.hosts.app(host)
        if entry is not None:
            return sources.source(entry)
    return tag, None


def find_source(tags: Tags, ref: Referrer, sources: SourceList) -> tuple[str, str | None]:
    """(source, its category or None), in README's order."""
    if tags.source:
        return tagged_source(tags.source, sources)
    entry = referrer_entry(ref, sources)
    if entry is not None:
        return sources.source(entry)
    if tags.click:
        network = tags.click[0]
        return sources.names.get(network.lower(), (network, None))
    if ref.kind == "web":
        return shown(ref.host), None
    if ref.kind == "app":
        return ref.host, None
    if ref.kind == "unknown":
        # README reading: `(unknown)` stands in for the referrer's host, so a click id's network comes first.
        return "(unknown)", None
    return ("(not set)" if tags.tagged else "Direct"), None


def is_internal(ref: Referrer, tags: Tags, domains: tuple[str, ...], sources: SourceList) -> bool:
    """The referrer is the site itself (a registered domain or a subdomain of one, `www.` ignored, or the
    page's own host) or a page visitors return from."""
    if ref.kind != "web":
        return False
    host = without_www(ref.host)
    # README reading: ports do not matter: `localhost:8000` registered covers a referrer from localhost:3000.
    for domain in filter(None, map(bare_host, domains)):
        site = without_www(domain)
        if host == site or host.endswith("." + site):
            return True
    if tags.page_host and host == without_www(tags.page_host):
        return True
    return sources.returns.find(ref.host, ref.path, sources.not_inherited) is not None


def choose_channel(tags: Tags, ref: Referrer, source: str, category: str | None, internal: bool) -> str:
    """README's channel table: the first rule that holds decides."""
    medium = (tags.medium or (tags.click[1] if tags.click else "")).lower()
    campaign = tags.campaign.lower()
    src = source.lower()
    paid = PAID.match(medium) is not None
    shopping = category == "shopping" or SHOPPING_CAMPAIGN.match(campaign) is not None
    # README reading: "has a referrer" (rule 17) means a readable one; an unreadable referrer is Unassigned.
    has_referrer = ref.kind in ("web", "app")
    rules = (
        ("Direct", not tags.tagged and ref.kind == "none"),
        ("Internal", not tags.tagged and internal),
        ("Cross-network", "cross-network" in campaign),
        ("Paid Shopping", shopping and paid),
        ("Paid Search", category == "search" and paid),
        ("Paid Social", category == "social" and paid),
        ("Paid Video", category == "video" and paid),
        ("Display", medium in DISPLAY_MEDIA),
        ("Paid Other", paid),
        ("AI Assistants", category == "ai"),
        ("Organic Shopping", shopping),
        ("Organic Social", category == "social" or medium in SOCIAL_MEDIA),
        ("Organic Video", category == "video" or "video" in medium),
        ("Organic Search", category == "search" or medium == "organic"),
        ("Email", category == "email" or src in EMAIL_WORDS or medium in EMAIL_WORDS),
        ("Affiliates", medium in ("affiliate", "affiliates")),
        ("Referral", medium in ("referral", "app", "link") or (not tags.tagged and has_referrer)),
        ("Audio", medium == "audio"),
        ("SMS", src == "sms" or medium == "sms"),
        ("Mobile Push Notifications",
         medium.endswith("push") or "mobile" in medium or "notification" in medium or src == "firebase"),
    )
    return next((channel for channel, holds in rules if holds), "Unassigned")


def acquisition(url: str, referrer: str | None, domains: tuple[str, ...] = ()) -> tuple[str, str, str, str, str]:
    """(channel, source, utm_source, utm_medium, utm_campaign) of an event on page `url`
    reached from `referrer` (None or "" = no referrer), on a site whose registered domains are
    `domains` (lower-case hosts, maybe with a port). UTM values decoded, '(none)' when missing/empty."""
    sources = source_list()
    tags = read_tags(url)
    ref = read_referrer(referrer)
    source, category = find_source(tags, ref, sources)
    internal = is_internal(ref, tags, domains, sources)
    channel = choose_channel(tags, ref, source, category, internal)
    if channel == "Internal":
        source = shown(ref.host)  # an Internal visit's source is the referring host
    return channel, source, tags.source or "(none)", tags.medium or "(none)", tags.campaign or "(none)"
