"""Garbage configuration gets a clear error and a non-zero exit, never a half-started server."""

import os
import subprocess

import pytest

FLOE = os.path.abspath(os.environ.get("FLOE_BIN", "target/debug/floe"))


def _run(args, tmp_path, env=None):
    return subprocess.run([FLOE, *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})}, cwd=tmp_path)


@pytest.mark.parametrize("args,needle", [
    (["--flush-interval-ms", "0"], "flush_interval_ms"),
    (["--advertise", "no-port"], "advertise"),
    (["--num-partitions", "0"], "num_partitions"),
    (["--listen", "not-an-address"], "invalid value"),
    (["--client-zone-cidrs", "10.0.0.0/33=a"], "client zone CIDR"),
    (["--group-min-session-timeout-ms", "9000", "--group-max-session-timeout-ms", "100"],
     "session timeout"),
    (["--offsets-retention-minutes", "0"], "offsets-retention-minutes"),
])
def test_bad_flags_are_refused(tmp_path, args, needle):
    r = _run(["playground", "--data-dir", str(tmp_path / "d"),
              "--admin-listen", "127.0.0.1:0", *args], tmp_path)
    assert r.returncode != 0
    assert needle in r.stderr, r.stderr


def test_unknown_key_in_config_file_is_refused(tmp_path):
    cfg = tmp_path / "floe.toml"
    cfg.write_text('[agent]\nflush_interval_ms = 100\nflush_intervall_ms = 5\n')
    r = _run(["playground", "--data-dir", str(tmp_path / "d"), "--admin-listen", "127.0.0.1:0",
              "--config", str(cfg)], tmp_path)
    assert r.returncode != 0
    assert "flush_intervall_ms" in r.stderr, r.stderr


def test_bad_object_store_url_is_refused(tmp_path):
    r = _run(["agent", "--metadata-url", "http://127.0.0.1:1", "--object-store", "gs://bucket",
              "--admin-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"], tmp_path)
    assert r.returncode != 0
    assert "s3:// or file://" in r.stderr, r.stderr


def test_bad_database_url_is_refused(tmp_path):
    r = _run(["metadata", "--database-url", "mysql://x", "--listen", "127.0.0.1:0",
              "--admin-listen", "127.0.0.1:0"], tmp_path)
    assert r.returncode != 0
    assert "postgres://" in r.stderr, r.stderr
