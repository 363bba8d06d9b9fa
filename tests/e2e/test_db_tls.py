"""The metadata service reaches PostgreSQL over TLS (managed PostgreSQL such as RDS forces
it): a throw-away cluster with ssl=on and a self-signed certificate, `sslmode=require`."""

import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

from conftest import FloeProcess, free_port

PG_BIN = pathlib.Path("/usr/lib/postgresql/15/bin")


def _run(*cmd, **kw):
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True, timeout=60, **kw)


@pytest.fixture
def tls_postgres():
    if not (PG_BIN / "initdb").exists() or shutil.which("openssl") is None:
        pytest.fail("PostgreSQL binaries and openssl are required (tests/run installs them)")
    d = pathlib.Path(tempfile.mkdtemp(prefix="floe-pg-tls-"))
    port = free_port()
    try:
        shutil.chown(d, "postgres")
        _run("runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(d / "data"),
             "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-keyout", str(d / "data/server.key"),
             "-out", str(d / "data/server.crt"))
        for f in ("server.key", "server.crt"):
            shutil.chown(d / "data" / f, "postgres")
        os.chmod(d / "data/server.key", 0o600)
        with open(d / "data/pg_hba.conf", "w") as f:
            # TLS only: a plaintext connection is refused, so success proves TLS was used.
            f.write("hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n")
        _run("runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(d / "data"),
             "-l", str(d / "log"), "-w", "-o",
             f"-c listen_addresses=127.0.0.1 -p {port} -k {d} -c ssl=on -c fsync=off", "start")
        yield port
    finally:
        subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D",
                        str(d / "data"), "-m", "fast", "-w", "stop"], capture_output=True,
                       timeout=60)
        shutil.rmtree(d, ignore_errors=True)


def _metadata(tmp_path, url, name):
    admin = free_port()
    return FloeProcess(name, ["metadata", "--database-url", url,
                              "--listen", f"127.0.0.1:{free_port()}",
                              "--admin-listen", f"127.0.0.1:{admin}"], tmp_path, admin)


def test_metadata_service_connects_with_tls(tmp_path, tls_postgres):
    url = f"postgres://postgres@127.0.0.1:{tls_postgres}/postgres"
    tls = _metadata(tmp_path, url + "?sslmode=require", "metadata-tls").start()
    try:
        assert tls.running()
    finally:
        assert tls.stop() == 0
    # Without TLS the server refuses the connection: the metadata service fails to start.
    plain = _metadata(tmp_path, url + "?sslmode=disable", "metadata-plain")
    with pytest.raises(AssertionError, match="exited"):
        plain.start()
    assert "no encryption" in plain.log_tail() or "pg_hba" in plain.log_tail(), plain.log_tail()
    plain.kill()
