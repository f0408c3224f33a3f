"""What generated traffic is made of: site templates (a site map with entry pages, links,
exits, marked elements, custom events and goals), browsers and bots, referrers and UTM
campaigns. Data only; ``tools.generator.model`` draws from it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Element:
    """A ``data-parallax-element`` on a page: seen (an impression) with probability
    ``visible``, clicked by ``ctr`` of those who see it; a click may lead to ``target``."""
    name: str
    visible: float = 0.8
    ctr: float = 0.1
    target: str | None = None


@dataclass(frozen=True)
class Custom:
    """A custom event a page fires, e.g. ``parallax("signup", {plan: "pro"})``: with
    ``probability`` per page view, each property drawn from its choices."""
    name: str
    probability: float
    props: tuple[tuple[str, tuple[str | int | bool, ...]], ...] = ()


@dataclass(frozen=True)
class Page:
    path: str
    entry: float = 0.0  # weight as a landing page
    exit: float = 0.5  # probability of leaving after this page
    links: tuple[tuple[str, float], ...] = ()  # next page -> weight
    elements: tuple[Element, ...] = ()
    customs: tuple[Custom, ...] = ()
    outbound: tuple[str, ...] = ()  # links to other hosts; a click on one ends the visit


@dataclass(frozen=True)
class Template:
    name: str
    pages: tuple[Page, ...]
    # Goals: (name, kind, pattern) as `parallax goal add` takes them (kind "page" or "event").
    goals: tuple[tuple[str, str, str], ...]
    outbound_exits: float = 0.25  # of exits from a page with outbound links: by one of them

    def by_path(self) -> dict[str, Page]:
        return {p.path: p for p in self.pages}


def _p(path: str, entry: float = 0.0, exit: float = 0.5, links: dict[str, float] | None = None,
       elements: tuple[Element, ...] = (), customs: tuple[Custom, ...] = (), outbound: tuple[str, ...] = ()) -> Page:
    return Page(path, entry, exit, tuple((links or {}).items()), elements, customs, outbound)


_PRODUCTS = ("/products/blue-mug", "/products/red-kettle", "/products/oak-teapot")

SHOP = Template("shop", (
    _p("/", 0.35, 0.35, {"/products": 5, _PRODUCTS[0]: 2, _PRODUCTS[1]: 1, "/about": 0.5},
       (Element("hero-banner", 0.9, 0.08, "/products"),)),
    _p("/products", 0.15, 0.3, {p: 1 for p in _PRODUCTS} | {"/": 0.3}),
    *(_p(path, 0.1, 0.45, {"/cart": 3, "/products": 4} | {q: 1 for q in _PRODUCTS if q != path},
         (Element("add-to-cart", 0.95, 0.25, "/cart"), Element("reviews", 0.4, 0.05))) for path in _PRODUCTS),
    _p("/cart", 0.0, 0.3, {"/checkout": 6, "/products": 3}, (Element("checkout-button", 0.95, 0.5, "/checkout"),)),
    _p("/checkout", 0.0, 0.2, {"/checkout/standard/done": 6, "/checkout/express/done": 4}),
    *(_p(f"/checkout/{kind}/done", 0.0, 0.85, {"/products": 1},
         customs=(Custom("purchase", 0.95, (("amount", (19, 29, 49, 89)), ("currency", ("EUR",)),
                                            ("gift", (True, False)))),))
      for kind in ("standard", "express")),
    _p("/about", 0.02, 0.6, {"/": 1}, outbound=("https://instagram.com/shop.example",)),
), goals=(("Checkout", "page", "/checkout/*/done"), ("Purchase", "event", "purchase")))

_POSTS = ("/blog/lambda-architecture", "/blog/hll-sketches", "/blog/session-windows", "/blog/2026/kafka-kraft")

BLOG = Template("blog", (
    _p("/", 0.15, 0.4, {p: 1 for p in _POSTS} | {"/about": 0.3}),
    _p("/blog", 0.1, 0.35, {p: 1 for p in _POSTS}),
    *(_p(path, 0.18, 0.65, {"/blog": 2, "/": 1} | {q: 1 for q in _POSTS if q != path},
         (Element("newsletter-box", 0.5, 0.06), Element("share-buttons", 0.7, 0.03)),
         (Custom("newsletter_signup", 0.03, (("placement", ("footer", "inline")),)),),
         ("https://github.com/apache/spark", "https://kafka.apache.org/documentation/")) for path in _POSTS),
    _p("/about", 0.03, 0.6, {"/blog": 1}),
), goals=(("Newsletter", "event", "newsletter_signup"), ("Read a 2026 post", "page", "/blog/2026/**")),
    outbound_exits=0.4)

DOCS = Template("docs", (
    _p("/", 0.1, 0.3, {"/docs": 3, "/docs/install": 2}),
    _p("/docs", 0.2, 0.3, {"/docs/install": 3, "/docs/quickstart": 3, "/docs/api/reports": 1, "/docs/faq": 1},
       (Element("search-box", 0.9, 0.1),)),
    _p("/docs/install", 0.25, 0.4, {"/docs/quickstart": 4, "/docs": 1, "/docs/faq": 1},
       customs=(Custom("copy_code", 0.35, (("lang", ("sh", "python")),)),)),
    _p("/docs/quickstart", 0.15, 0.4, {"/docs/api/reports": 2, "/docs/api/collect": 2, "/docs": 1},
       customs=(Custom("copy_code", 0.3, (("lang", ("sh", "python", "js")),)),)),
    *(_p(path, 0.1, 0.5, {"/docs": 1, "/docs/api/reports": 1, "/docs/api/collect": 1},
         (Element("feedback-widget", 0.6, 0.04),), (Custom("copy_code", 0.2, (("lang", ("sh", "js")),)),))
      for path in ("/docs/api/reports", "/docs/api/collect")),
    _p("/docs/faq", 0.1, 0.6, {"/docs": 1}, outbound=("https://stackoverflow.com/questions/tagged/parallax",)),
), goals=(("Install guide", "page", "/docs/install"), ("API docs", "page", "/docs/api/**"),
          ("Copied code", "event", "copy_code")))

SAAS = Template("app", (
    _p("/", 0.4, 0.4, {"/pricing": 3, "/features": 2, "/signup": 1, "/login": 1},
       (Element("cta", 0.95, 0.12, "/signup"), Element("pricing-banner", 0.5, 0.05, "/pricing"))),
    _p("/pricing", 0.15, 0.35, {"/signup": 3, "/features": 1, "/": 1},
       (Element("plan-pro", 0.9, 0.15, "/signup"), Element("plan-team", 0.8, 0.08, "/signup"))),
    _p("/features", 0.1, 0.4, {"/pricing": 3, "/signup": 1}),
    _p("/signup", 0.05, 0.3, {"/welcome": 1},
       customs=(Custom("signup", 0.45, (("plan", ("free", "pro", "team")),)),)),
    _p("/welcome", 0.0, 0.7, {"/app": 1}),
    _p("/app", 0.0, 0.9, {"/": 1}),
    _p("/blog/launch", 0.1, 0.6, {"/": 1}, outbound=("https://news.ycombinator.com/item?id=41234567",)),
    _p("/login", 0.1, 0.2, {"/app": 1}),
), goals=(("Signed up", "event", "signup"), ("Saw pricing", "page", "/pricing")))

TEMPLATES = (SHOP, BLOG, DOCS, SAAS)
# One zone per site in turn: a DST zone on each side of UTC, UTC and a half-hour zone first.
ZONES = ("Europe/Paris", "America/New_York", "UTC", "Asia/Kolkata", "Asia/Tokyo", "America/Los_Angeles",
         "Australia/Sydney")


@dataclass(frozen=True)
class Agent:
    """A browser or bot: its User-Agent and what the collector's enrichment makes of it
    (checked against ``collector.enrichment.parse_user_agent`` by the tests)."""
    user_agent: str
    device: str
    browser: str
    os: str | None
    weight: float


_CHROME = "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0"
_IOS_SAFARI = "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
BROWSERS = (
    Agent(f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {_CHROME} Safari/537.36", "desktop", "Chrome", "Windows", 28),
    Agent(f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {_CHROME} Safari/537.36 Edg/131.0.0.0", "desktop", "Edge",
          "Windows", 6),
    Agent("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "desktop", "Firefox",
          "Windows", 4),
    Agent("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
          "Safari/605.1.15", "desktop", "Safari", "Mac OS X", 9),
    Agent(f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) {_CHROME} Safari/537.36", "desktop", "Chrome",
          "Mac OS X", 7),
    Agent("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "desktop", "Firefox", "Linux", 3),
    Agent(f"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) {_CHROME} Safari/537.36", "desktop", "Chrome", "Chrome OS", 1),
    Agent(f"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) {_IOS_SAFARI}", "mobile", "Safari", "iOS", 17),
    Agent("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1", "mobile", "Chrome", "iOS", 3),
    Agent(f"Mozilla/5.0 (Linux; Android 10; K) {_CHROME} Mobile Safari/537.36", "mobile", "Chrome", "Android", 13),
    Agent("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 "
          "Chrome/122.0.0.0 Mobile Safari/537.36", "mobile", "Samsung Internet", "Android", 3),
    Agent("Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0", "mobile", "Firefox", "Android", 1),
    Agent(f"Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) {_IOS_SAFARI}", "tablet", "Safari", "iOS", 3),
    Agent(f"Mozilla/5.0 (Linux; Android 13; SM-X710) {_CHROME} Safari/537.36", "tablet", "Chrome", "Android", 2),
)
BOTS = (
    Agent("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot", "Googlebot", None, 5),
    Agent("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
          "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36", "bot", "bingbot", None, 3),
    Agent("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "bot", "AhrefsBot", None, 2),
    Agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 "
          "Safari/537.36", "bot", "HeadlessChrome", "Linux", 1),
)


@dataclass(frozen=True)
class Source:
    """Where a landing page was reached from (roughly the channels of ``schemas.sources``):
    a referrer URL, UTM parameters on the landing URL, or neither (direct)."""
    kind: str
    referrers: tuple[str, ...] = ()
    utm: tuple[tuple[tuple[str, str], ...], ...] = ()
    weight: float = 1.0


SOURCES = (
    Source("direct", weight=33),
    Source("search", ("https://www.google.com/", "https://www.google.fr/", "https://www.bing.com/search?q=analytics",
                      "https://duckduckgo.com/", "https://www.ecosia.org/search?q=lambda+architecture"), weight=30),
    Source("social", ("https://t.co/x1Yz9", "https://news.ycombinator.com/", "https://www.reddit.com/r/dataengineering/",
                      "https://www.linkedin.com/feed/", "https://www.facebook.com/", "https://bsky.app/"), weight=15),
    Source("video", ("https://www.youtube.com/", "https://m.youtube.com/"), weight=3),
    Source("email", ("https://mail.google.com/", "android-app://com.google.android.gm/", "https://outlook.live.com/"),
           weight=3),
    Source("ai assistants", ("https://chatgpt.com/", "https://www.perplexity.ai/"), weight=2),
    Source("other sites", ("https://partner.example.org/links", "https://awesome-analytics.example.net/",
                           "https://weekly.example.io/issue/142"), weight=10),
    # Campaign visits: some come with a referrer, newsletter readers (mail clients) without.
    Source("campaign", ("https://www.google.com/", "https://t.co/c4Mp41gn", ""), (
        (("utm_source", "newsletter"), ("utm_medium", "email"), ("utm_campaign", "spring-sale")),
        (("utm_source", "google"), ("utm_medium", "cpc"), ("utm_campaign", "brand")),
        (("utm_source", "twitter"), ("utm_medium", "social"), ("utm_campaign", "launch-week")),
    ), weight=12),
)


@dataclass(frozen=True)
class Mix:
    """How much of the traffic is of each unusual kind (fractions, 0 to 1)."""
    bots: float = 0.03  # of visitors
    returning: float = 0.25  # of visits: the visitor comes back, more than the session gap later
    late: float = 0.02  # of visits: delivered minutes to hours after they happened
    duplicates: float = 0.02  # of requests: sent twice (a tracker's retry or page-hide beacon)
