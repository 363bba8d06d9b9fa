"""Hand-encoded Kafka frames for raw-socket tests (non-flexible versions only, plus the
ApiVersions request with a v2 header).

Reference: the Kafka protocol guide. Everything is big-endian. A frame is an int32 size then
the request: header (api_key int16, api_version int16, correlation_id int32, client_id
nullable string) then the body.
"""

from __future__ import annotations

import socket
import struct
import time

# ---------------------------------------------------------------- CRC-32C (Castagnoli)
_POLY = 0x82F63B78
_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ _POLY if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard check value


# ---------------------------------------------------------------- varints
def zigzag_varint(v: int) -> bytes:
    u = (v << 1) ^ (v >> 63)
    u &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while True:
        if u < 0x80:
            out.append(u)
            return bytes(out)
        out.append((u & 0x7F) | 0x80)
        u >>= 7


def uvarint(u: int) -> bytes:
    out = bytearray()
    while True:
        if u < 0x80:
            out.append(u)
            return bytes(out)
        out.append((u & 0x7F) | 0x80)
        u >>= 7


def kstring(s: str | None) -> bytes:
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def compact_string(s: str) -> bytes:
    b = s.encode()
    return uvarint(len(b) + 1) + b


# ---------------------------------------------------------------- record batch v2
def record_batch(records: list[tuple[bytes | None, bytes | None]], base_ts: int = 1_700_000_000_000,
                 corrupt_crc: bool = False,
                 producer: tuple[int, int, int] = (-1, -1, -1)) -> bytes:
    """An uncompressed magic-2 record batch; baseOffset 0; `producer` is the idempotent
    producer's (id, epoch, base sequence), none by default."""
    body = bytearray()
    for i, (k, v) in enumerate(records):
        rec = bytearray()
        rec += b"\x00"                      # attributes
        rec += zigzag_varint(i)             # timestamp delta
        rec += zigzag_varint(i)             # offset delta
        rec += zigzag_varint(-1) if k is None else zigzag_varint(len(k)) + k
        rec += zigzag_varint(-1) if v is None else zigzag_varint(len(v)) + v
        rec += zigzag_varint(0)             # headers
        body += zigzag_varint(len(rec)) + rec
    n = len(records)
    pid, epoch, seq = producer
    after_crc = struct.pack(">hiqqqhii", 0, n - 1, base_ts, base_ts + n - 1, pid, epoch, seq, n) \
        + bytes(body)
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0xDEADBEEF
    # partitionLeaderEpoch, magic, crc
    after_length = struct.pack(">ibI", -1, 2, crc) + after_crc
    return struct.pack(">qi", 0, len(after_length)) + after_length


# ---------------------------------------------------------------- requests
def frame(api_key: int, api_version: int, correlation_id: int, body: bytes,
          client_id: str | None = "floe-e2e", flexible_header: bool = False) -> bytes:
    header = struct.pack(">hhi", api_key, api_version, correlation_id) + kstring(client_id)
    if flexible_header:
        header += b"\x00"  # empty tagged fields
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def api_versions_v0(correlation_id: int = 1) -> bytes:
    return frame(18, 0, correlation_id, b"")


def api_versions_flexible(version: int, correlation_id: int = 1) -> bytes:
    """ApiVersions v3+ shape: header v2 and compact-string body."""
    body = compact_string("floe-e2e") + compact_string("1.0") + b"\x00"
    return frame(18, version, correlation_id, body, flexible_header=True)


def init_producer_id_v0(correlation_id: int = 3) -> bytes:
    """InitProducerId v0 for an idempotent (non-transactional) producer."""
    return frame(22, 0, correlation_id, kstring(None) + struct.pack(">i", 60000))


def produce_v3(topic: str, partition: int, batch: bytes, acks: int = -1,
               timeout_ms: int = 10000, correlation_id: int = 7) -> bytes:
    body = kstring(None) + struct.pack(">hi", acks, timeout_ms)
    body += struct.pack(">i", 1) + kstring(topic)
    body += struct.pack(">i", 1) + struct.pack(">i", partition)
    body += struct.pack(">i", len(batch)) + batch
    return frame(0, 3, correlation_id, body)


# ---------------------------------------------------------------- responses
class Reader:
    def __init__(self, data: bytes):
        self.d = data
        self.i = 0

    def take(self, fmt: str):
        vals = struct.unpack_from(">" + fmt, self.d, self.i)
        self.i += struct.calcsize(">" + fmt)
        return vals if len(vals) > 1 else vals[0]

    def string(self) -> str | None:
        n = self.take("h")
        if n < 0:
            return None
        s = self.d[self.i:self.i + n].decode()
        self.i += n
        return s


def parse_api_versions_v0(resp: bytes) -> tuple[int, int, dict[int, tuple[int, int]]]:
    """(correlation_id, error_code, {api_key: (min, max)})."""
    r = Reader(resp)
    corr, err, n = r.take("ihi")
    keys = {}
    for _ in range(max(n, 0)):
        k, lo, hi = r.take("hhh")
        keys[k] = (lo, hi)
    return corr, err, keys


def parse_init_producer_id_v0(resp: bytes) -> tuple[int, int, int, int]:
    """(correlation_id, error_code, producer_id, producer_epoch)."""
    corr, _throttle, err, pid, epoch = Reader(resp).take("iihqh")
    return corr, err, pid, epoch


def parse_produce_v3(resp: bytes) -> tuple[int, list[tuple[str, int, int, int]]]:
    """(correlation_id, [(topic, partition, error_code, base_offset)])."""
    r = Reader(resp)
    corr = r.take("i")
    out = []
    for _ in range(r.take("i")):
        name = r.string()
        for _ in range(r.take("i")):
            part, err, base, _log_append = r.take("ihqq")
            out.append((name, part, err, base))
    return corr, out


# ---------------------------------------------------------------- socket
def connect(bootstrap: str, timeout: float = 10) -> socket.socket:
    host, port = bootstrap.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.settimeout(timeout)
    return s


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def read_response(s: socket.socket) -> bytes:
    (size,) = struct.unpack(">i", recv_exact(s, 4))
    return recv_exact(s, size)


def roundtrip(bootstrap: str, request: bytes) -> bytes:
    with connect(bootstrap) as s:
        s.sendall(request)
        return read_response(s)


def closed_by_peer(s: socket.socket, timeout: float = 10) -> bool:
    """True when the server closes the connection (EOF or reset) within `timeout`, having
    sent nothing back."""
    s.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = s.recv(4096)
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        if not data:
            return True
        raise AssertionError(f"server answered instead of closing: {data[:64]!r}")
    return False
