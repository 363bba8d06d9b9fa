"""OpenTelemetry export when configured: with OTEL_EXPORTER_OTLP_ENDPOINT set, request spans
reach an OTLP/HTTP collector (here a tiny recording server) as protobuf."""

import http.server
import threading

from conftest import free_port
from kafka_util import create_topic, make_records, produce_all


class _Collector(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Collector.received.append((self.path, self.headers.get("Content-Type"), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_request_spans_are_exported_over_otlp_http(playground_factory):
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        pg = playground_factory(flags=False, env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }).start()
        create_topic(pg.bootstrap, "traced", partitions=1)
        produce_all(pg.bootstrap, "traced", make_records(10, "t"), partition=0)
        assert pg.stop() == 0  # shutdown flushes the exporter
    finally:
        server.shutdown()
    traces = [(ct, body) for path, ct, body in _Collector.received if path == "/v1/traces"]
    assert traces, f"no OTLP trace export received: {[p for p, _, _ in _Collector.received]}"
    assert all(ct == "application/x-protobuf" for ct, _ in traces)
    payload = b"".join(body for _, body in traces)
    assert b"floe-playground" in payload, "service name resource"
    assert b"request" in payload and b"Produce" in payload, "the per-request span and its api"
