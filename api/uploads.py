"""Streaming a multipart upload to a temporary file, refusing it as soon as it passes the size limit.

The body is parsed as it arrives (python-multipart's push parser), so an oversized upload is cut
off after UPLOAD_MAX_BYTES instead of being spooled whole first. A body that ends before its closing
boundary (a dropped connection, a truncated request) is refused: the parser alone would accept it.
The temporary file is removed on every way out, cancellation included; files left by a killed API
process are removed at the next start (`remove_stale_uploads`).
"""

from __future__ import annotations

import io
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from longread.api.errors import ApiError

log = logging.getLogger(__name__)

FIELD = "file"
MULTIPART_OVERHEAD = 64 * 1024
TEMP_PREFIX = "upload-"
STALE_UPLOAD_S = 3600
MAX_FILENAME_CHARS = 255
# C0 and C1 controls, DEL, and bidirectional overrides (names that display differently than they are).
_BAD_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass
class Upload:
    filename: str
    path: Path
    size: int

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the upload exceeds the {limit}-byte limit", limit=limit)


def clean_filename(raw: bytes) -> str:
    """The base name of an uploaded file (422 `invalid_filename` for control characters, a parent-folder
    step or an overlong name); a plain path, as some clients send, is cut to its last part."""
    name = raw.decode("utf-8", "replace")
    if _BAD_NAME_CHARS.search(name):
        raise ApiError(422, "invalid_filename", "the file name contains control characters")
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise ApiError(422, "invalid_filename", "the file name must not step into parent folders ('..')")
    name = parts[-1].strip()
    if len(name) > MAX_FILENAME_CHARS:
        raise ApiError(422, "invalid_filename", f"the file name is longer than {MAX_FILENAME_CHARS} characters")
    return name if name not in ("", ".") else "upload"


def remove_stale_uploads(directory: Path | None = None, older_than_s: float = STALE_UPLOAD_S) -> int:
    """Delete temporary upload files left by a killed process; returns how many were removed."""
    if directory is None:
        from longread.config import get_settings

        directory = get_settings().DATA_DIR.resolve() / "uploads"
    if not directory.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    removed = 0
    for path in directory.glob(f"{TEMP_PREFIX}*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:  # removed by another process meanwhile
            continue
    if removed:
        log.info("removed %d stale upload file(s)", removed)
    return removed


class _Collector:
    """Parser callbacks: remembers each part's headers and writes the `file` part to disk."""

    def __init__(self, directory: Path, limit: int) -> None:
        self.directory, self.limit = directory, limit
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.out: io.BufferedWriter | None = None
        self.upload: Upload | None = None
        self.over = False
        self.ended = False

    def on_part_begin(self) -> None:
        self.headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field, self.header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name == FIELD and self.upload is None and b"filename" in options:
            filename = clean_filename(options[b"filename"])
            fd, path = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=self.directory)
            self.out = os.fdopen(fd, "wb")
            self.upload = Upload(filename=filename, path=Path(path), size=0)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.out is None or self.upload is None or self.over:
            return
        self.upload.size += end - start
        if self.upload.size > self.limit:
            self.over = True
            return
        self.out.write(data[start:end])

    def on_part_end(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None

    def on_end(self) -> None:
        self.ended = True

    def close(self) -> None:
        self.on_part_end()

    def abandon(self) -> None:
        """Close and delete the partial file (any way out but success)."""
        self.close()
        if self.upload is not None:
            self.upload.discard()


async def receive_upload(request: Request, *, limit: int, directory: Path) -> Upload:
    """The `file` field of a multipart/form-data body, on disk; 413 past `limit`, 400 when malformed."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise ApiError(415, "unsupported_media_type", "send the document as multipart/form-data, field 'file'")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise too_large(limit)
    directory.mkdir(parents=True, exist_ok=True)
    collector = _Collector(directory, limit)
    callbacks = {
        name: getattr(collector, name)
        for name in (
            "on_part_begin",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_part_data",
            "on_part_end",
            "on_end",
        )
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]  # python-multipart types the callbacks as a TypedDict
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if collector.over:
                raise too_large(limit)
        parser.finalize()
        if not collector.ended:
            raise ApiError(400, "truncated_upload", "the multipart body ended before its closing boundary")
    except ApiError:
        collector.abandon()
        raise
    except ClientDisconnect as exc:
        collector.abandon()
        raise ApiError(400, "truncated_upload", "the connection closed before the upload was complete") from exc
    except Exception as exc:  # the multipart parser's own errors: a malformed body
        collector.abandon()
        raise ApiError(400, "malformed_upload", "could not parse the multipart body") from exc
    except BaseException:  # cancellation (the server shutting down): leave no temp file behind
        collector.abandon()
        raise
    collector.close()
    if collector.upload is None:
        raise ApiError(422, "missing_file", "the form has no file field named 'file'")
    if collector.upload.size == 0:
        collector.upload.discard()
        raise ApiError(422, "empty_file", "the uploaded file is empty")
    return collector.upload
