"""The collector's producer plumbing without Kafka: a request's acknowledgements, the
records' JSON."""
import json

from collector.kafka_sink import Acks, to_json
from infra.clients import json_bytes


def test_a_request_is_done_when_every_record_is_acknowledged():
    acks = Acks(3)
    acks(None, object())
    acks(None, object())
    assert not acks.done.is_set()
    acks(None, object())
    assert acks.done.is_set() and acks.error is None


def test_one_failed_record_fails_the_request_at_once():
    acks = Acks(3)
    acks(None, object())
    acks("Local: Message timed out", object())
    assert acks.done.is_set() and acks.error == "Local: Message timed out"
    acks(None, object())  # a later success does not clear the failure
    assert acks.error == "Local: Message timed out"


def test_records_are_the_same_json_whichever_encoder_writes_them():
    enriched = {"event_id": "0b7e6f0a-1b2c-4d5e-8f90-123456789abc", "ts": 1_763_856_000_000, "referrer": None,
                "props": {"plan": "pro", "note": "é \u2028 <script>"}, "big": 2**70}
    assert json.loads(to_json(enriched)) == json.loads(json_bytes(enriched)) == enriched
    # An unpaired surrogate (kept as sent in `events.invalid`) can only travel escaped.
    hostile = {"event": {"name": "\ud800x"}}
    assert to_json(hostile) == json_bytes(hostile) and json.loads(to_json(hostile)) == hostile
