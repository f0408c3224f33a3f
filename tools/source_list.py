"""Updating the vendored source list (``schemas/sources/data/matomo``) from Matomo's
searchengine-and-social-list: download (or copy) the three files, refuse them unless they
load as a source list, then write them with the pinned commit."""
from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import requests

from schemas.sources import lists

log = logging.getLogger(__name__)
REPOSITORY = "matomo-org/searchengine-and-social-list"
RAW = "https://raw.githubusercontent.com/" + REPOSITORY + "/{ref}/{file}"
COMMITS = "https://api.github.com/repos/" + REPOSITORY + "/commits/{ref}"
FILES = (*lists.MATOMO_FILES.values(), "LICENSE")
PINNED = "PINNED"
TIMEOUT_S = 30


@dataclass(frozen=True)
class Pin:
    commit: str
    committed: str  # YYYY-MM-DD

    def text(self) -> str:
        return ("# The vendored copy of matomo-org/searchengine-and-social-list (CC0-1.0): update with\n"
                "# `parallax sources update` (README.md, \"Acquisition channels\"), never by hand.\n"
                f"repository: https://github.com/{REPOSITORY}\ncommit: {self.commit}\ncommitted: {self.committed}\n")


def pinned(matomo: Path = lists.MATOMO) -> dict[str, str]:
    """The PINNED file's fields (repository, commit, committed)."""
    fields = {}
    for line in (matomo / PINNED).read_text().splitlines():
        if line and not line.startswith("#") and ":" in line:
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields


def _download(ref: str, into: Path) -> Pin:
    meta = requests.get(COMMITS.format(ref=ref), timeout=TIMEOUT_S, headers={"Accept": "application/vnd.github+json"})
    meta.raise_for_status()
    commit = meta.json()["sha"]
    committed = meta.json()["commit"]["committer"]["date"][:10]
    for file in FILES:
        log.info("downloading %s at %s", file, commit[:12])
        response = requests.get(RAW.format(ref=commit, file=file), timeout=TIMEOUT_S)
        response.raise_for_status()
        (into / file).write_bytes(response.content)
    return Pin(commit, committed)


def _copy(checkout: Path, into: Path) -> Pin:
    for file in FILES:
        if not (checkout / file).is_file():
            raise lists.SourceListError(f"{checkout} has no {file}: is it a checkout of {REPOSITORY}?")
        shutil.copyfile(checkout / file, into / file)
    try:
        out = subprocess.run(["git", "-C", str(checkout), "log", "-1", "--format=%H %cs"], check=True,
                             capture_output=True, text=True).stdout.split()
        return Pin(out[0], out[1])
    except (OSError, subprocess.CalledProcessError, IndexError):
        return Pin(f"unknown (copied from a directory, {datetime.now(timezone.utc):%Y-%m-%d})",
                   datetime.now(timezone.utc).strftime("%Y-%m-%d"))


def summary(source_list: lists.SourceList) -> dict[str, int]:
    """How many sources of each category a list holds."""
    counts = dict.fromkeys(lists.CATEGORIES, 0)
    for source in source_list.sources.values():
        counts[source.category] += 1
    return counts


def update(*, ref: str = "master", checkout: Path | None = None, matomo: Path = lists.MATOMO) -> tuple[Pin, dict]:
    """Replace the vendored files by Matomo's at ``ref`` (or a local ``checkout``'s), only
    if they load as a source list. Returns the new pin and the counts before and after."""
    before = summary(lists.load(matomo))
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp)
        pin = _copy(checkout, staged) if checkout else _download(ref, staged)
        after = summary(lists.load(staged))  # raises SourceListError: nothing is written
        for file in FILES:
            shutil.copyfile(staged / file, matomo / file)
        (matomo / PINNED).write_text(pin.text())
    log.info("source list now at %s (%s)", pin.commit, pin.committed)
    return pin, {"before": before, "after": after}
