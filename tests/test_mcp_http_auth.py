"""Who may reach `/mcp`: the API's own rules (anonymous local access until the first key, then a key),
and an MCP session answers only the key that opened it."""

from __future__ import annotations

from pathlib import Path

import pytest

ACCEPT = {"Accept": "application/json, text/event-stream"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
}
LIST_TOOLS = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}


def test_mcp_follows_the_api_keys_and_binds_a_session_to_its_key(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mcp")
    from fastapi.testclient import TestClient

    from longread.api.main import create_app
    from longread.api.security import create_key
    from longread.config import get_settings
    from longread.storage.db import session_scope

    monkeypatch.setenv("LONGREAD_REDIS_URL", "redis://127.0.0.1:9/0")  # no rate-limit counter: requests pass
    monkeypatch.setenv("LONGREAD_ANONYMOUS_LOCAL", "true")
    get_settings.cache_clear()
    with TestClient(create_app()) as http:
        # Before any key exists, local anonymous access opens a session, as on every route.
        opened = http.post("/mcp", json=INITIALIZE, headers=ACCEPT)
        assert opened.status_code == 200, opened.text
        assert opened.headers.get("mcp-session-id")

        with session_scope() as session:
            mine, _ = create_key(session, "mine")
            theirs, _ = create_key(session, "theirs")
        refused = http.post("/mcp", json=INITIALIZE, headers=ACCEPT)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "missing_api_key"

        opened = http.post("/mcp", json=INITIALIZE, headers=ACCEPT | {"Authorization": f"Bearer {mine}"})
        assert opened.status_code == 200, opened.text
        session_id = opened.headers["mcp-session-id"]
        follow = {"mcp-session-id": session_id, "mcp-protocol-version": "2025-06-18"}
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert http.post(
            "/mcp", json=initialized, headers=ACCEPT | follow | {"Authorization": f"Bearer {mine}"}
        ).is_success

        listed = http.post("/mcp", json=LIST_TOOLS, headers=ACCEPT | follow | {"Authorization": f"Bearer {mine}"})
        assert listed.status_code == 200 and '"get_text"' in listed.text
        # Another tenant's key cannot use that session: it is not found for them.
        stolen = http.post("/mcp", json=LIST_TOOLS, headers=ACCEPT | follow | {"Authorization": f"Bearer {theirs}"})
        assert stolen.status_code == 404 and "get_text" not in stolen.text
    get_settings.cache_clear()
