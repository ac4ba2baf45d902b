"""A 100 MB body against a real ``keystile serve``: refused early, memory stays flat."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.servers import keystile_server

MB = 1024 * 1024
RSS_CEILING_KB = 150 * 1024


def _server_rss_kb(port: int) -> int:
    """VmRSS of the process serving ``port`` (found by its command line)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        if b"serve" in cmdline and str(port).encode() in cmdline:
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    raise AssertionError(f"no server process on port {port}")


def _chunks(total: int, size: int = MB) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"A" * size
        sent += size


def test_a_100_mb_body_is_refused_without_being_read(tmp_path: Path) -> None:
    with keystile_server(tmp_path, {"KEYSTILE_MODE": "development"}) as base:
        port = urlsplit(base).port
        assert port is not None
        # Declared length: answered 413 before a byte of the body is read.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /auth/user/otp/sign_in HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (100 * MB)
            )
            answer = b""  # read before we send any of the body, until the server closes
            while chunk := sock.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"request_too_large" in answer
        # Chunked, no length: cut off as it streams.
        try:
            response = httpx.post(
                f"{base}/auth/user/otp/sign_in",
                content=_chunks(100 * MB),
                headers={"content-type": "application/json"},
                timeout=30,
            )
            assert response.status_code == 413
        except httpx.TransportError:
            pass  # the server may close the connection while we are still sending: also a refusal
        assert _server_rss_kb(port) < RSS_CEILING_KB
        assert httpx.get(f"{base}/openapi.json", timeout=5).status_code == 200
