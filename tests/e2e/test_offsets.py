"""Committed offsets for consumers that assign partitions themselves (no group membership):
commit, close, reopen, resume exactly after the committed position, across a restart, with
confluent-kafka (librdkafka) and kafka-python."""

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from kafka_util import create_topic, make_records, produce_all


def _consume(c, n, timeout=30):
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            out.append((m.partition(), m.offset()))
    return out


def _consumer(bootstrap, group):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "enable.auto.commit": False, "auto.offset.reset": "earliest"})


def test_commit_close_reopen_resume(playground):
    create_topic(playground.bootstrap, "resume", partitions=2)
    produce_all(playground.bootstrap, "resume", make_records(40, "r"))

    c = _consumer(playground.bootstrap, "g-resume")
    try:
        # No committed offset yet: OffsetFetch answers -1 (OFFSET_INVALID).
        before = c.committed([TopicPartition("resume", 0), TopicPartition("resume", 1)], timeout=20)
        assert [tp.offset for tp in before] == [-1001, -1001]
        c.assign([TopicPartition("resume", 0, 0), TopicPartition("resume", 1, 0)])
        got = _consume(c, 20)
        assert len(got) == 20
        last = {}
        for p, o in got:
            last[p] = max(last.get(p, -1), o)
        c.commit(offsets=[TopicPartition("resume", p, o + 1) for p, o in last.items()],
                 asynchronous=False)
    finally:
        c.close()

    playground.restart()

    c = _consumer(playground.bootstrap, "g-resume")
    try:
        committed = c.committed([TopicPartition("resume", p) for p in (0, 1)], timeout=20)
        want = {p: last.get(p, -1) + 1 if p in last else -1001 for p in (0, 1)}
        assert {tp.partition: tp.offset for tp in committed} == want
        # Assign without offsets: the client resumes from the committed ones (OffsetFetch),
        # and from the beginning where nothing was committed. No gap and no re-read.
        c.assign([TopicPartition("resume", 0), TopicPartition("resume", 1)])
        rest = _consume(c, 20)
        assert len(rest) == 20
        for p, o in rest:
            assert o > last.get(p, -1), f"re-read partition {p} offset {o}"
        seen = {(p, o) for p, o in got + rest}
        assert len(seen) == 40, "every record exactly once across the two consumers"
    finally:
        c.close()


def test_groups_are_independent_and_errors_are_kafkas(playground):
    create_topic(playground.bootstrap, "indep", partitions=1)
    a = _consumer(playground.bootstrap, "g-a")
    b = _consumer(playground.bootstrap, "g-b")
    try:
        a.commit(offsets=[TopicPartition("indep", 0, 7)], asynchronous=False)
        assert a.committed([TopicPartition("indep", 0)], timeout=20)[0].offset == 7
        assert b.committed([TopicPartition("indep", 0)], timeout=20)[0].offset == -1001
        # A partition that does not exist.
        try:
            a.commit(offsets=[TopicPartition("indep", 5, 1)], asynchronous=False)
            raise AssertionError("commit to a missing partition must fail")
        except KafkaException as e:
            assert e.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    finally:
        a.close()
        b.close()


def test_kafka_python_commits_and_reads_back(playground):
    from kafka import KafkaConsumer, TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata

    create_topic(playground.bootstrap, "kp-offsets", partitions=1)
    c = KafkaConsumer(bootstrap_servers=playground.bootstrap, group_id="kp-group",
                      enable_auto_commit=False)
    try:
        tp = KTP("kp-offsets", 0)
        c.assign([tp])
        c.commit({tp: OffsetAndMetadata(3, "meta", -1)})
        assert c.committed(tp) == 3
    finally:
        c.close()
