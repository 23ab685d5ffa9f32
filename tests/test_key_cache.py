"""The API's key cache: revocation in this process is immediate, elsewhere within the cache's lifetime."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col


def test_a_key_revoked_here_is_refused_at_once(session: Any) -> None:
    from longread.api.security import cached_lookup, create_key, revoke

    plain, row = create_key(session, "cached")
    principal = cached_lookup(session, plain)
    assert principal is not None and principal.tenant_id == row.tenant_id
    revoke(session, row.id)
    assert cached_lookup(session, plain) is None


def test_a_key_revoked_elsewhere_is_refused_once_the_entry_expires(
    session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from longread.api import security
    from longread.storage.models import ApiKey

    plain, row = security.create_key(session, "elsewhere")
    assert security.cached_lookup(session, plain) is not None
    # Another process revokes it: only the table changes, this process's cache does not hear of it.
    session.execute(update(ApiKey).where(col(ApiKey.id) == row.id).values(revoked=True))
    session.commit()
    assert security.cached_lookup(session, plain) is not None  # still within the 5 s
    clock = security.time.monotonic() + security.KEY_CACHE_TTL_S + 0.1
    monkeypatch.setattr(security.time, "monotonic", lambda: clock)
    assert security.cached_lookup(session, plain) is None


def test_unknown_keys_do_not_grow_the_cache_without_bound(session: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from longread.api import security

    monkeypatch.setattr(security, "KEY_CACHE_MAX", 5)
    for n in range(20):
        assert security.cached_lookup(session, f"lr_unknown-{n}") is None
    assert len(security._key_cache) <= 5
