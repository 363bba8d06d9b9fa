"""KafkaJS (pure JavaScript, its own protocol code and its own older request versions: EndTxn
v1, AddPartitionsToTxn v1) against the playground: an idempotent producer, consume-transform-
produce in transactions with group offsets, an aborted transaction, a fenced zombie, and reads
in both isolation levels. tests/e2e/kafkajs/transactions.js drives the client and prints what
it saw; this test judges it. tests/run installs the pinned package (npm ci)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT_DIR = Path(__file__).parent / "kafkajs"


def _kafkajs_or_skip() -> str:
    node = shutil.which("node")
    installed = (SCRIPT_DIR / "node_modules" / "kafkajs" / "package.json").exists()
    if node and installed:
        return node
    msg = "node or tests/e2e/kafkajs/node_modules missing (tests/run installs them)"
    if os.environ.get("FLOE_E2E_REQUIRE_SERVICES") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


def test_kafkajs_transactions_idempotence_and_isolation(playground):
    node = _kafkajs_or_skip()
    run = subprocess.run(
        [node, str(SCRIPT_DIR / "transactions.js"), playground.bootstrap],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr[-4000:]}"
    seen = json.loads(run.stdout.strip().splitlines()[-1])

    # The idempotent producer's first batch on each partition starts at offset 0.
    assert seen["idempotentAcks"] == [[0, 0], [1, 0]]
    assert seen["transformed"] == 20
    # The group's offsets arrived with the committed transactions.
    assert seen["groupOffsets"] == [[0, 10], [1, 10]]
    # The successor's InitProducerId fenced the zombie; EndTxn v1 knows no PRODUCER_FENCED.
    assert seen["zombieCommit"] == "INVALID_PRODUCER_EPOCH"

    committed = [v for _, _, v in seen["committed"]]
    expected = sorted([f"out-in-{i}" for i in range(20)] + ["successor"])
    assert sorted(committed) == expected, "read_committed shows exactly the committed records"
    uncommitted = {v: (p, o) for p, o, v in seen["uncommitted"]}
    assert set(uncommitted) == set(expected) | {"aborted", "zombie"}

    # Offsets are dense per partition except for the control markers, which take one each:
    # a commit marker after each transformed batch, an abort marker after "aborted" and the
    # fenced "zombie", and a commit marker after "successor" (the log end).
    ends = dict((p, e) for p, e in seen["ends"])
    assert ends[0] == uncommitted["aborted"][1] + 2
    assert ends[1] == uncommitted["successor"][1] + 2
    assert uncommitted["zombie"][0] == 1 and uncommitted["zombie"][1] < uncommitted["successor"][1]
    for part in (0, 1):
        values = [o for p, o, v in seen["committed"] if p == part and v.startswith("out-")]
        assert values == sorted(values) and len(set(values)) == 10
