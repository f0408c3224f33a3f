"""Test data the unit and the stack tests share: user agents of real browsers and bots,
and the acquisition cases of the channel rule."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CHROME_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/131.0.0.0 Safari/537.36")
IPHONE_SAFARI = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/17.5 Mobile/15E148 Safari/604.1")
ANDROID_TABLET = ("Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/120.0.0.0 Safari/537.36")
ANDROID_PHONE_FIREFOX = "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
GOOGLEBOT_SMARTPHONE = ("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
                        "Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")

# The acquisition cases (tests/cases/channels.tsv): real referrers and landing URLs, with the
# channel, source and UTM tags README's "Acquisition channels" gives them.
CHANNEL_CASES_FILE = Path(__file__).resolve().parent / "cases" / "channels.tsv"


@dataclass(frozen=True)
class ChannelCase:
    url: str
    referrer: str | None
    domains: tuple[str, ...]
    channel: str
    source: str
    utm_source: str
    utm_medium: str
    utm_campaign: str
    note: str

    @property
    def expected(self) -> tuple[str, str, str, str, str]:
        return self.channel, self.source, self.utm_source, self.utm_medium, self.utm_campaign


def channel_cases() -> list[ChannelCase]:
    lines = CHANNEL_CASES_FILE.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    assert header == ["url", "referrer", "domains", "channel", "source", "utm_source", "utm_medium", "utm_campaign",
                      "note"], header
    out = []
    for line in lines[1:]:
        if not line.strip():
            continue
        url, referrer, domains, *rest = line.split("\t")
        out.append(ChannelCase(url, referrer or None, tuple(d for d in domains.split(",") if d), *rest))
    return out
