"""Resolve a Java artifact and its runtime dependencies from Maven Central with ``mvn``.

Each fetch lands in its own folder of the download cache (outside the clone) and is
marked complete only when ``mvn`` succeeded, so an interrupted fetch is redone, and a
finished one is never fetched again.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>parallax.fetch</groupId><artifactId>{name}</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
</project>
"""
DEP = "    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"


class FetchError(RuntimeError):
    pass


def fetch_jars(cache_dir: Path, name: str, coordinates: list[str], *, transitive: bool = True) -> Path:
    """Return a folder holding the jars of ``coordinates`` ("group:artifact:version") and,
    with ``transitive``, their runtime dependencies."""
    target = cache_dir / "jars" / name
    lib = target / "lib"
    done = target / ".complete"
    if done.exists():
        return lib
    if shutil.which("mvn") is None:
        raise FetchError("Maven (mvn) is not installed; it is needed once to fetch jars from Maven Central.")
    if shutil.which("java") is None:
        raise FetchError("Java is not installed (Java 17 is needed for Kafka, Cassandra and Spark).")
    deps = "\n".join(DEP.format(g=g, a=a, v=v) for g, a, v in (c.split(":") for c in coordinates))
    target.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(lib, ignore_errors=True)
    (target / "pom.xml").write_text(POM.format(name=name, deps=deps))
    log.info("fetching %s from Maven Central (once; cached in %s) ...", name, target)
    cmd = [
        "mvn", "-B", "-q", "-f", str(target / "pom.xml"),
        "dependency:copy-dependencies", f"-DoutputDirectory={lib}", "-DincludeScope=runtime",
        f"-DexcludeTransitive={str(not transitive).lower()}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise FetchError(f"mvn could not fetch {name}:\n{(result.stdout + result.stderr)[-3000:]}")
    done.write_text("\n".join(coordinates) + "\n")
    log.info("fetched %s: %d jars", name, len(list(lib.glob("*.jar"))))
    return lib
