"""kcat (librdkafka 2.0.x from Debian) against the playground."""

import json
import shutil
import subprocess

import pytest

from kafka_util import create_topic

pytestmark = pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")


def kcat(*args, input_text=None, timeout=60):
    r = subprocess.run(["kcat", *args], input=input_text, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"kcat {' '.join(args)} exited {r.returncode}: {r.stderr}"
    return r.stdout


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_kcat_produce_consume(playground, codec):
    topic = f"kcat-{codec}"
    create_topic(playground.bootstrap, topic, partitions=2)
    lines = [f"k{i % 7}:v{i}-{'x' * (i % 50)}" for i in range(500)]
    kcat("-P", "-b", playground.bootstrap, "-t", topic, "-p", "0", "-K:", "-z", codec,
         "-X", "acks=all", input_text="\n".join(lines) + "\n")
    out = kcat("-C", "-b", playground.bootstrap, "-t", topic, "-p", "0", "-o", "beginning", "-e",
               "-f", "%k:%s:%o\\n")
    want = [f"{line}:{i}" for i, line in enumerate(lines)]
    assert out.splitlines() == want
    # partition 1 is empty: consuming it ends at once with nothing
    out = kcat("-C", "-b", playground.bootstrap, "-t", topic, "-p", "1", "-o", "beginning", "-e",
               "-f", "%k:%s:%o\\n")
    assert out == ""


def test_kcat_consume_from_offset(playground):
    create_topic(playground.bootstrap, "kcat-offset", partitions=1)
    lines = [f"k:{i}" for i in range(100)]
    kcat("-P", "-b", playground.bootstrap, "-t", "kcat-offset", "-p", "0", "-K:",
         input_text="\n".join(lines) + "\n")
    out = kcat("-C", "-b", playground.bootstrap, "-t", "kcat-offset", "-p", "0", "-o", "42", "-e",
               "-f", "%s:%o\\n")
    assert out.splitlines() == [f"{i}:{i}" for i in range(42, 100)]
    out = kcat("-C", "-b", playground.bootstrap, "-t", "kcat-offset", "-p", "0", "-o", "-10",
               "-e", "-f", "%s\\n")
    assert out.splitlines() == [str(i) for i in range(90, 100)]


def test_kcat_metadata_listing(playground):
    create_topic(playground.bootstrap, "kcat-list-a", partitions=3)
    create_topic(playground.bootstrap, "kcat-list-b", partitions=1)
    md = json.loads(kcat("-L", "-J", "-b", playground.bootstrap))
    assert len(md["brokers"]) >= 1
    ids = {b["id"] for b in md["brokers"]}
    assert any(b["name"] == playground.bootstrap for b in md["brokers"]), md["brokers"]
    topics = {t["topic"]: t for t in md["topics"]}
    assert "kcat-list-a" in topics and "kcat-list-b" in topics, sorted(topics)
    a = topics["kcat-list-a"]
    assert [p["partition"] for p in sorted(a["partitions"], key=lambda p: p["partition"])] == \
        [0, 1, 2]
    for p in a["partitions"]:
        assert p["leader"] in ids
    assert len(topics["kcat-list-b"]["partitions"]) == 1
    text = kcat("-L", "-b", playground.bootstrap, "-t", "kcat-list-a")
    assert 'topic "kcat-list-a" with 3 partitions' in text, text
