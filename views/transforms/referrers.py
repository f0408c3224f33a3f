"""Where a visit came from, as a Spark expression: the rule of ``schemas.sources``, for
events archived before the collector applied it (the sources tests hold both to the same
answers)."""
from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from schemas.sources import CAMPAIGN_PARAMETERS, NONE_VALUE, SEARCH_HOSTS, SOCIAL_HOSTS


def _host_matches(host: Column, suffixes: tuple[str, ...]) -> Column:
    """host is one of ``suffixes`` or a subdomain of it ("google." matches google.fr)."""
    cond = F.lit(False)
    for suffix in suffixes:
        if suffix.endswith("."):
            cond = cond | host.startswith(suffix) | host.contains("." + suffix)
        else:
            cond = cond | (host == suffix) | host.endswith("." + suffix)
    return cond


def query_param(url: Column, name: str) -> Column:
    """A query parameter of ``url``, URL-decoded; null when missing or empty (the rule of
    ``schemas.sources``)."""
    value = F.try_url_decode(F.try_parse_url(url, F.lit("QUERY"), F.lit(name)))
    return F.when(value != "", value)


def referrer_parts(url: Column, referrer: Column) -> dict[str, Column]:
    """What the referrer source is decided from: the referrer's and the page's hosts, and
    whether the page URL is tagged as a campaign."""
    tagged = F.lit(False)
    for name in CAMPAIGN_PARAMETERS:
        tagged = tagged | query_param(url, name).isNotNull()
    return {
        "ref_host": F.lower(F.try_parse_url(referrer, F.lit("HOST"))),
        "page_host": F.lower(F.try_parse_url(url, F.lit("HOST"))),
        "tagged": tagged,
    }


def referrer_class(ref_host: Column, page_host: Column, tagged: Column) -> Column:
    return (
        F.when(tagged, "campaign")
        .when(ref_host.isNull() | (ref_host == ""), "direct")
        .when(ref_host == page_host, "internal")
        .when(_host_matches(ref_host, SEARCH_HOSTS), "search")
        .when(_host_matches(ref_host, SOCIAL_HOSTS), "social")
        .otherwise("other sites")
    )


def referrer_source(url: Column, referrer: Column) -> Column:
    """search, social, campaign (tagged URL), direct (no referrer), internal, other sites:
    the rule of ``schemas.sources``, for events archived before the collector applied it.

    As one expression, the referrer's host is parsed again for each of the ~40 host tests
    (Spark does not share subexpressions across a CASE's branches): ``with_dimensions``
    derives the parts in a projection of their own and classifies those instead."""
    return referrer_class(**referrer_parts(url, referrer))


def utm(name: str) -> Column:
    """The page URL's UTM tag ``name``; "(none)" when missing or empty."""
    return F.coalesce(query_param(F.col("url"), name), F.lit(NONE_VALUE))
