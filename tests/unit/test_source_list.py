"""The vendored source list (Matomo's, CC0-1.0) and Parallax's additions: what they hold
classifies as what they say, read here from the YAML files themselves, so that an update
that breaks the list (or the reading of it) fails; and `parallax sources update` replaces
the files only with a list that loads."""
from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
import yaml

from schemas.sources import classify, lists
from tools import source_list

PAGE, DOMAINS = "https://www.example.com/", ("www.example.com",)
CHANNEL_OF = {"search": "Organic Search", "social": "Organic Social", "video": "Organic Video", "email": "Email",
              "shopping": "Organic Shopping", "ai": "AI Assistants"}
MATOMO_CATEGORY = {"SearchEngines.yml": "search", "Socials.yml": "social", "AIAssistants.yml": "ai"}


def _file_entries() -> list[tuple[str, str, str]]:
    """(host entry, source name, category) of every file, straight from the YAML."""
    out = []
    for file, category in MATOMO_CATEGORY.items():
        for name, value in yaml.safe_load((lists.MATOMO / file).read_text()).items():
            for item in value:
                hosts = item["urls"] if isinstance(item, dict) else [item]
                out += [(h, str(name), category) for h in hosts]
    local = yaml.safe_load(lists.LOCAL_FILE.read_text())
    for category in CHANNEL_OF:
        for name, hosts in (local.get(category) or {}).items():
            out += [(h, str(name), category) for h in hosts]
    return out


def _concrete(entry: str) -> str:
    """A real host for an entry: `{}` as a top-level domain is "de", as a label "xx"."""
    host, _, path = entry.partition("/")
    labels = host.split(".")
    labels = [("de" if i == len(labels) - 1 else "xx") if label == "{}" else label for i, label in enumerate(labels)]
    return ".".join(labels) + ("/" + path if path else "/")


def _sample() -> list[tuple[str, str, str]]:
    entries = _file_entries()
    local = yaml.safe_load(lists.LOCAL_FILE.read_text())
    special = set(local["returns"]) | set(local["not_sources"])
    seen: dict[str, set[tuple[str, str]]] = {}
    for host, name, category in entries:
        seen.setdefault(_concrete(host), set()).add((name, category))
    usable = [(h, n, c) for h, n, c in entries
              if len(seen[_concrete(h)]) == 1 and h not in special and "//" not in h
              and h.split(".")[0] not in local["not_inherited"]]
    by_category: dict[str, list] = {}
    for entry in usable:
        by_category.setdefault(entry[2], []).append(entry)
    rng = random.Random(15)
    return [e for c in sorted(by_category) for e in rng.sample(by_category[c], min(40, len(by_category[c])))]


@pytest.mark.parametrize("entry, name, category", _sample())
def test_entries_classify_as_their_own_category(entry, name, category):
    """A referrer from a listed host (its `{}` filled in) is that source, in its channel."""
    got = classify(PAGE, "https://" + _concrete(entry), DOMAINS)
    assert (got.channel, got.source) == (CHANNEL_OF[category], name)


@pytest.mark.parametrize("referrer, channel, source", [
    ("https://www.google.com/", "Organic Search", "Google"), ("https://www.bing.com/", "Organic Search", "Bing"),
    ("https://duckduckgo.com/", "Organic Search", "DuckDuckGo"), ("https://yandex.ru/", "Organic Search", "Yandex"),
    ("https://www.baidu.com/", "Organic Search", "Baidu"), ("https://www.facebook.com/", "Organic Social", "Facebook"),
    ("https://t.co/x", "Organic Social", "Twitter"), ("https://www.linkedin.com/", "Organic Social", "LinkedIn"),
    ("https://www.instagram.com/", "Organic Social", "Instagram"), ("https://www.youtube.com/", "Organic Video", "YouTube"),
    ("https://chatgpt.com/", "AI Assistants", "ChatGPT"), ("https://mail.google.com/", "Email", "Gmail"),
])
def test_the_best_known_sources_are_there(referrer, channel, source):
    """An update that lost or renamed one of the sources most traffic comes from fails here."""
    got = classify(PAGE, referrer, DOMAINS)
    assert (got.channel, got.source) == (channel, source)


def test_the_loader_uses_every_entry_but_the_known_odd_one():
    assert lists.load().skipped == ["android-app//com.google.android.googlequicksearchbox/https/www.google.com"]


@pytest.fixture
def vendored(tmp_path: Path) -> Path:
    """A copy of the vendored directory to update, so the real one is never touched."""
    target = tmp_path / "matomo"
    shutil.copytree(lists.MATOMO, target)
    return target


def _checkout(tmp_path: Path, search_engines: str) -> Path:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for file in source_list.FILES:
        shutil.copyfile(lists.MATOMO / file, checkout / file)
    (checkout / "SearchEngines.yml").write_text(search_engines)
    return checkout


def test_update_from_a_checkout_replaces_the_files(tmp_path, vendored):
    extra = "Parallax Test Search:\n  -\n    urls:\n      - search.parallax-test.example\n    params:\n      - q\n"
    checkout = _checkout(tmp_path, (lists.MATOMO / "SearchEngines.yml").read_text() + extra)
    pin, counts = source_list.update(checkout=checkout, matomo=vendored)
    assert counts["after"]["search"] == counts["before"]["search"] + 1
    assert "Parallax Test Search" in lists.load(vendored).sources
    assert source_list.pinned(vendored)["commit"] == pin.commit  # not a git checkout: says so
    assert pin.commit.startswith("unknown (copied from a directory")


@pytest.mark.parametrize("broken", ["- just\n- a list\n", "Google: 42\n", "not: [valid yaml\n", "Tiny:\n  - t.example\n"])
def test_an_update_that_does_not_load_writes_nothing(tmp_path, vendored, broken):
    before = {p.name: p.read_bytes() for p in vendored.iterdir()}
    with pytest.raises(lists.SourceListError):
        source_list.update(checkout=_checkout(tmp_path, broken), matomo=vendored)
    assert {p.name: p.read_bytes() for p in vendored.iterdir()} == before
