"""The collector's pure pipeline steps: precise errors, enrichment without the IP."""
from __future__ import annotations

import json
import uuid

import pytest

from collector import pipeline
from collector.pipeline import Reason, RequestRejected


def event(**over):
    e = {"event_id": str(uuid.uuid4()), "type": "pageview", "ts": 1_763_800_000_000, "url": "https://a.test/x?y=1"}
    e.update(over)
    return e


@pytest.mark.parametrize("body, reason, status", [
    (b"{not json", Reason.MALFORMED_BODY, 400),
    (b"\xff\xfe", Reason.MALFORMED_BODY, 400),
    (b"[]", Reason.MALFORMED_BODY, 400),
    (b'{"events": []}', Reason.MALFORMED_BODY, 400),
    (b'{"site": "s", "events": {}}', Reason.MALFORMED_BODY, 400),
    (json.dumps({"site": "s", "events": [{}] * 101}).encode(), Reason.BATCH_TOO_LARGE, 413),
])
def test_parse_rejects_bad_bodies(body, reason, status):
    with pytest.raises(RequestRejected) as info:
        pipeline.parse(body, max_events=100)
    assert (info.value.reason, info.value.status) == (reason, status)
    assert info.value.message


def test_validate_names_each_offending_field():
    checked = pipeline.validate([
        event(),
        {"type": "pageview", "ts": 1_763_800_000_000, "url": "/"},
        event(ts="soon", type="Bad Type"),
        "not an object",
        event(extra={"unknown": "property"}),  # unknown properties are kept, not rejected
    ])
    assert [i for i, _ in checked.valid] == [0, 4]
    rejected = {i: errs for i, _, errs in checked.rejected}
    assert rejected[1] == ["/: 'event_id' is a required property"]
    assert [e.split(":")[0] for e in rejected[2]] == ["/ts", "/type"]
    assert rejected[3][0].startswith("/: 'not an object' is not of type 'object'")


def test_enrich_derives_a_cookieless_visitor_and_drops_the_ip():
    e = event()
    out = pipeline.enrich(e, "s", salt=b"salt-1", ip="203.0.113.9", user_agent="UA", received_at=1)
    assert out["path"] == "/x" and out["site"] == "s" and out["received_at"] == 1
    assert "203.0.113.9" not in json.dumps(out)
    again = pipeline.enrich(event(), "s", salt=b"salt-1", ip="203.0.113.9", user_agent="UA", received_at=2)
    assert again["visitor_id"] == out["visitor_id"]  # same person, same day
    other_day = pipeline.enrich(event(), "s", salt=b"salt-2", ip="203.0.113.9", user_agent="UA", received_at=3)
    other_site = pipeline.enrich(event(), "t", salt=b"salt-1", ip="203.0.113.9", user_agent="UA", received_at=3)
    assert len({out["visitor_id"], other_day["visitor_id"], other_site["visitor_id"]}) == 3


def test_enrich_keeps_a_given_visitor_id():
    out = pipeline.enrich(event(visitor_id="abc"), "s", salt=b"x", ip="1.2.3.4", user_agent="UA", received_at=1)
    assert out["visitor_id"] == "abc"
    assert pipeline.kafka_key("s", "abc") == b"s|abc"
