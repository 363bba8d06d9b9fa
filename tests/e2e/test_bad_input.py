"""Malformed and hostile input over a raw TCP socket: the agent answers with the right Kafka
error or closes the one connection, and keeps serving everyone else."""

import struct

from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from kafka.record.default_records import DefaultRecordBatch

import kwire
from kafka_util import admin, consume_all, create_topic

CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
UNSUPPORTED_VERSION = 35


def assert_serving(bootstrap):
    corr, err, keys = kwire.parse_api_versions_v0(
        kwire.roundtrip(bootstrap, kwire.api_versions_v0(correlation_id=4242)))
    assert (corr, err) == (4242, 0)
    assert 18 in keys and 0 in keys, keys


def test_record_batch_encoder_matches_kafka_python():
    """Self-check of the hand encoder: kafka-python decodes it and validates its CRC."""
    batch = kwire.record_batch([(b"k1", b"v1"), (None, b"v2"), (b"k3", None)])
    rb = DefaultRecordBatch(batch)
    assert rb.validate_crc()
    assert [(r.key, r.value) for r in rb] == [(b"k1", b"v1"), (None, b"v2"), (b"k3", None)]
    assert not DefaultRecordBatch(kwire.record_batch([(b"k", b"v")], corrupt_crc=True)) \
        .validate_crc()


def test_api_versions_v0(playground):
    corr, err, keys = kwire.parse_api_versions_v0(
        kwire.roundtrip(playground.bootstrap, kwire.api_versions_v0(correlation_id=11)))
    assert (corr, err) == (11, 0)
    assert keys[18][0] == 0 and keys[18][1] >= 3, keys[18]   # ApiVersions
    assert keys[0][0] <= 3 <= keys[0][1], keys[0]             # Produce v3 is supported


def test_api_versions_unsupported_version(playground):
    """Kafka's rule: an ApiVersions request of an unknown version gets a v0 response with
    UNSUPPORTED_VERSION and the supported ranges, so the client can retry lower."""
    resp = kwire.roundtrip(playground.bootstrap, kwire.api_versions_flexible(99, correlation_id=77))
    corr, err, keys = kwire.parse_api_versions_v0(resp)
    assert corr == 77
    assert err == UNSUPPORTED_VERSION
    assert 18 in keys, f"supported ranges missing from the error response: {keys}"
    assert_serving(playground.bootstrap)


def test_oversized_frame_closes_connection(playground):
    with kwire.connect(playground.bootstrap) as s:
        s.sendall(struct.pack(">i", 200 * 1024 * 1024) + b"\x00" * 64)
        assert kwire.closed_by_peer(s), "200 MiB frame: connection not closed"
    assert_serving(playground.bootstrap)


def test_negative_frame_length_closes_connection(playground):
    with kwire.connect(playground.bootstrap) as s:
        s.sendall(struct.pack(">i", -5))
        assert kwire.closed_by_peer(s), "negative frame length: connection not closed"
    assert_serving(playground.bootstrap)


def test_garbage_after_valid_length_closes_connection(playground):
    with kwire.connect(playground.bootstrap) as s:
        s.sendall(struct.pack(">i", 24) + b"\xff\xfe" + b"\xab" * 22)
        assert kwire.closed_by_peer(s), "garbage frame: connection not closed"
    # a header that promises a longer client id than the frame holds
    with kwire.connect(playground.bootstrap) as s:
        s.sendall(struct.pack(">i", 10) + struct.pack(">hhih", 18, 0, 1, 500))
        assert kwire.closed_by_peer(s), "truncated header: connection not closed"
    # a frame cut short by the client: the server must not wedge
    with kwire.connect(playground.bootstrap) as s:
        s.sendall(struct.pack(">i", 1000) + b"\x00" * 10)
    assert_serving(playground.bootstrap)


def test_valid_raw_produce(playground):
    create_topic(playground.bootstrap, "raw", partitions=1)
    batch = kwire.record_batch([(b"k%d" % i, b"v%d" % i) for i in range(5)])
    corr, parts = kwire.parse_produce_v3(
        kwire.roundtrip(playground.bootstrap, kwire.produce_v3("raw", 0, batch, correlation_id=9)))
    assert corr == 9
    assert parts == [("raw", 0, 0, 0)]
    got = consume_all(playground.bootstrap, "raw", {0: 5})[0]
    assert [(o, k, v) for o, k, v in got] == [(i, b"k%d" % i, b"v%d" % i) for i in range(5)]


def test_produce_bad_crc_is_corrupt_message(playground):
    create_topic(playground.bootstrap, "crc", partitions=1)
    batch = kwire.record_batch([(b"k", b"v")], corrupt_crc=True)
    _, parts = kwire.parse_produce_v3(
        kwire.roundtrip(playground.bootstrap, kwire.produce_v3("crc", 0, batch)))
    assert [(t, p, e) for t, p, e, _ in parts] == [("crc", 0, CORRUPT_MESSAGE)]
    # nothing was appended
    batch = kwire.record_batch([(b"k", b"ok")])
    _, parts = kwire.parse_produce_v3(
        kwire.roundtrip(playground.bootstrap, kwire.produce_v3("crc", 0, batch)))
    assert parts == [("crc", 0, 0, 0)]


def test_produce_bigger_than_max_message_bytes(playground):
    create_topic(playground.bootstrap, "small", partitions=1)
    a = admin(playground.bootstrap)
    res = ConfigResource(ResourceType.TOPIC, "small", incremental_configs=[
        ConfigEntry("max.message.bytes", "512", incremental_operation=AlterConfigOpType.SET)])
    a.incremental_alter_configs([res], request_timeout=20)[res].result(timeout=30)
    big = kwire.record_batch([(b"k", b"x" * 2000)])
    _, parts = kwire.parse_produce_v3(
        kwire.roundtrip(playground.bootstrap, kwire.produce_v3("small", 0, big)))
    assert [(t, p, e) for t, p, e, _ in parts] == [("small", 0, MESSAGE_TOO_LARGE)]
    small = kwire.record_batch([(b"k", b"x" * 50)])
    _, parts = kwire.parse_produce_v3(
        kwire.roundtrip(playground.bootstrap, kwire.produce_v3("small", 0, small)))
    assert parts == [("small", 0, 0, 0)]


def test_produce_to_nonexistent_partition(playground):
    create_topic(playground.bootstrap, "onepart", partitions=1)
    batch = kwire.record_batch([(b"k", b"v")])
    _, parts = kwire.parse_produce_v3(
        kwire.roundtrip(playground.bootstrap, kwire.produce_v3("onepart", 7, batch)))
    assert [(t, p, e) for t, p, e, _ in parts] == [("onepart", 7, UNKNOWN_TOPIC_OR_PARTITION)]
    _, parts = kwire.parse_produce_v3(
        kwire.roundtrip(playground.bootstrap, kwire.produce_v3("onepart", -1, batch)))
    assert [(t, p, e) for t, p, e, _ in parts] == [("onepart", -1, UNKNOWN_TOPIC_OR_PARTITION)]


def test_produce_acks_zero_gets_no_response(playground):
    """acks=0: no response frame; the next request on the same connection is answered."""
    create_topic(playground.bootstrap, "acks0", partitions=1)
    batch = kwire.record_batch([(b"k", b"v")])
    with kwire.connect(playground.bootstrap) as s:
        s.sendall(kwire.produce_v3("acks0", 0, batch, acks=0, correlation_id=1))
        s.sendall(kwire.api_versions_v0(correlation_id=2))
        corr, err, _ = kwire.parse_api_versions_v0(kwire.read_response(s))
        assert (corr, err) == (2, 0), "acks=0 produce must not be answered"
    got = consume_all(playground.bootstrap, "acks0", {0: 1})[0]
    assert [(o, v) for o, _, v in got] == [(0, b"v")]


def test_pipelined_requests_answered_in_order(playground):
    with kwire.connect(playground.bootstrap) as s:
        s.sendall(b"".join(kwire.api_versions_v0(correlation_id=c) for c in range(100, 120)))
        corrs = [kwire.parse_api_versions_v0(kwire.read_response(s))[0] for _ in range(20)]
    assert corrs == list(range(100, 120))
