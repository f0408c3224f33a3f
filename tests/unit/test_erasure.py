"""The pure parts of erasure: which visitor ids a request takes, the delete's condition, and
which stored batch rows a run's writes leave stale (what ``batch_layer.replace`` removes)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from batch_layer.erase import Found, commit_tag, parse_args, predicate
from batch_layer.replace import CATALOGUE_VIEWS, granularities, scopes, stale, view_key
from cli.erasure import requester
from store.erasures import ErasureError, ErasureRequest, merge_site_days, site_days_text, visitor_ids
from store.replacement import StoredRow, row_key

UTC = timezone.utc
DAY = date(2026, 3, 29)  # Europe/Paris springs forward: a 23-hour day


def test_visitor_ids_are_checked_each_kept_once_and_sorted():
    assert visitor_ids([" b ", "a", "b", ""]) == ("a", "b")
    assert visitor_ids(["0f" * 16]) == ("0f" * 16,)  # a cookieless id (32 hex digits)
    with pytest.raises(ErasureError, match="at least one"):
        visitor_ids(["", "  "])
    with pytest.raises(ErasureError, match=r"not a visitor id: 'a b'"):
        visitor_ids(["ok", "a b"])
    with pytest.raises(ErasureError, match="not a visitor id"):
        visitor_ids(["x" * 65])
    with pytest.raises(ErasureError, match="not a visitor id: \"it's\""):
        visitor_ids(["it's"])
    with pytest.raises(ErasureError, match="at most 1000"):
        visitor_ids([f"v{i}" for i in range(1001)])


def test_the_delete_condition_names_the_ids_the_site_and_the_partitions():
    assert predicate(["b", "a"], None) == "visitor_id IN ('a', 'b')"
    assert predicate(["a"], "shop", [date(2026, 3, 2), date(2026, 3, 1)]) == (
        "visitor_id IN ('a') AND site = 'shop' AND date IN (DATE '2026-03-01', DATE '2026-03-02')")
    assert commit_tag("0123456789ab") == "parallax erasure 0123456789ab"


def test_job_arguments():
    args = parse_args(["--requests", "a1,b2", "--run-id", "scheduled__x"])
    assert (args.requests, args.run_id) == (["a1", "b2"], "scheduled__x")
    assert parse_args(["--requests", "a1", ""]).run_id == ""  # Airflow's empty templated argument


def test_site_days_merge_and_read_as_text():
    merged = merge_site_days({"b": [DAY]}, {"a": [DAY + timedelta(days=1), DAY], "b": [DAY]}, {"c": []})
    assert merged == {"a": (DAY, DAY + timedelta(days=1)), "b": (DAY,)}
    assert site_days_text(merged) == "a: 2026-03-29, 2026-03-30; b: 2026-03-29"
    assert site_days_text({}) == "none"


def test_a_request_as_the_api_answers_it():
    at = datetime(2026, 3, 30, 8, tzinfo=UTC)
    answer = ErasureRequest("0123456789ab", "cli:ops", at, ("v1",), site_days={"a": (DAY,)}).as_json()
    assert answer["requested_at"] == "2026-03-30T08:00:00+00:00" and answer["site_days"] == {"a": ["2026-03-29"]}
    assert answer["status"] == "pending" and answer["events_removed"] is None
    assert requester().startswith("cli:")


def test_a_run_replaces_the_event_rows_of_its_day_and_the_session_rows_of_two():
    event, session = scopes(DAY, "a", "Europe/Paris")
    assert (event.start, event.end) == (datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC))
    assert (session.start, session.end) == (datetime(2026, 3, 27, 23, tzinfo=UTC), event.end)
    assert "page" in CATALOGUE_VIEWS["event"] and "entry_page" not in CATALOGUE_VIEWS["event"]
    assert set(CATALOGUE_VIEWS["session"]) == {"traffic", "entry_page", "exit_page"}
    assert granularities("event", "traffic", ()) == ("minute", "hour", "day")
    assert granularities("event", "page", ()) == ("hour", "day")
    assert granularities("event", "page", [row_key("a", "page", "minute", event.start, "/")]) == (
        "minute", "hour", "day")
    assert granularities("session", "entry_page", ()) == ("minute", "hour", "day")


def _key(view: str, bucket: datetime, dim: str = "", granularity: str = "hour") -> tuple:
    return row_key("a", view, granularity, bucket, dim)


def test_stale_rows_lose_the_kinds_the_run_did_not_write_and_go_when_nothing_is_left():
    site_scopes = scopes(DAY, "a", "UTC")
    today = datetime(2026, 3, 29, 10, tzinfo=UTC)
    yesterday = datetime(2026, 3, 28, 10, tzinfo=UTC)
    outside = datetime(2026, 3, 27, 10, tzinfo=UTC)
    both, ev, se = frozenset({"event", "session"}), frozenset({"event"}), frozenset({"session"})
    stored = [
        StoredRow(_key("traffic", today), both),  # rewritten whole: kept
        StoredRow(_key("page", today, "/kept"), ev),  # rewritten: kept
        StoredRow(_key("page", today, "/only-erased"), ev),  # not rewritten: removed
        StoredRow(_key("traffic", today + timedelta(hours=1)), both),  # nothing rewritten: removed
        StoredRow(_key("traffic", today + timedelta(hours=2)), both),  # events stay, no session starts: cleared
        StoredRow(_key("traffic", yesterday), both),  # yesterday's events are not this run's: sessions cleared
        StoredRow(_key("entry_page", yesterday, "/x"), se),  # a session view of yesterday: removed
        StoredRow(_key("page", yesterday, "/y"), ev),  # yesterday's event rows: not this run's
        StoredRow(_key("traffic", outside), both),  # outside both scopes
        StoredRow(_key("page", today, "/empty"), frozenset()),  # an empty row in the scope: removed
        # written as sessions now, its events not seen by the read: never removed whole
        StoredRow(_key("traffic", today + timedelta(hours=3)), ev),
    ]
    written = {"event": {_key("traffic", today), _key("page", today, "/kept"),
                         _key("traffic", today + timedelta(hours=2))},
               "session": {_key("traffic", today), _key("traffic", today + timedelta(hours=3))}}
    result = stale(stored, written, site_scopes)
    assert sorted(result.rows) == sorted([_key("page", today, "/only-erased"),
                                          _key("traffic", today + timedelta(hours=1)),
                                          _key("entry_page", yesterday, "/x"), _key("page", today, "/empty")])
    assert result.columns == {"event": [_key("traffic", today + timedelta(hours=3))],
                              "session": [_key("traffic", today + timedelta(hours=2)), _key("traffic", yesterday)]}
    assert stale([StoredRow(_key("traffic", today), both)], written, site_scopes).empty


def test_a_view_frames_row_has_the_key_the_writer_stores():
    naive = datetime(2026, 3, 29, 10)  # Spark hands timestamps back naive, in UTC
    assert view_key({"site": "a", "bucket": naive}, "minute") == ("a", "traffic", "minute", naive.replace(tzinfo=UTC),
                                                                  "")
    assert view_key({"site": "a", "view_name": "page", "dim": "/", "bucket": naive}, "hour")[1:] == (
        "page", "hour", naive.replace(tzinfo=UTC), "/")


def test_found_events_give_every_site_day():
    found = Found({("a", DAY): 2, ("a", DAY + timedelta(days=1)): 1, ("b", DAY): 3})
    assert found.total == 6
    assert found.site_days() == {"a": (DAY, DAY + timedelta(days=1)), "b": (DAY,)}
