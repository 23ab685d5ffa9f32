"""An upload cut off mid-body, against the real uvicorn server: refused, nothing stored, no temp file left."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from longread.testing.processes import wait_for

pytestmark = [pytest.mark.service, pytest.mark.postgres]


def _uploads(fault_env: dict[str, str]) -> list[Path]:
    return list((Path(fault_env["LONGREAD_DATA_DIR"]) / "uploads").glob("upload-*"))


def test_a_client_that_disconnects_mid_upload_leaves_nothing_behind(
    fault_api: str, fault_client: httpx.Client, fault_env: dict[str, str], record: Callable[..., None]
) -> None:
    before = fault_client.get("/v1/documents").json()["total"]
    url = urlparse(fault_api)
    boundary = "cutcutcut"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="half.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    part = head + b"The harbour log, line after line. " * 4000  # ~136 KB sent of a declared 1 MB
    request = (
        f"POST /v1/documents HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\n"
        f"Authorization: {fault_client.headers['Authorization']}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {1024 * 1024}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.hostname, url.port), timeout=10) as conn:
        conn.sendall(request + part)
        wait_for(lambda: _uploads(fault_env), 10, "the upload's temp file to appear")
    started = time.monotonic()  # the client is gone: the server must clean up on its own
    wait_for(lambda: not _uploads(fault_env), 15, "the temp file of the cut upload to be removed")
    cleaned_s = time.monotonic() - started
    assert fault_client.get("/v1/documents").json()["total"] == before
    record("upload", "client disconnects mid-upload (real uvicorn)", handled=True, seconds=round(cleaned_s, 2))
