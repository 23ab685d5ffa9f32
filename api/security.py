"""API keys: shown once, stored only as a SHA-256, each owned by one tenant.

Keys are long random tokens, so a plain (unsalted) SHA-256 is enough to make a leaked table
useless, and it lets a request's key be found by an indexed lookup of its hash.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlmodel import Session, func, select

from longread.storage.models import LOCAL_TENANT, ApiKey, Tenant

KEY_PREFIX = "lr_"
KEY_CACHE_TTL_S = 5.0
"""How long a process trusts a looked-up key: a key revoked elsewhere stops working within this time."""
KEY_CACHE_MAX = 10_000


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant every read and write is scoped to, and the key (for rate limits)."""

    tenant_id: str
    key_id: str


ANONYMOUS = Principal(tenant_id=LOCAL_TENANT, key_id="anonymous")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(session: Session, name: str, *, tenant_id: str | None = None) -> tuple[str, ApiKey]:
    """Create a key (and its tenant, unless an existing tenant id is given); returns the plain key."""
    if tenant_id is None:
        tenant = Tenant(name=name)
        session.add(tenant)
        session.flush()
        tenant_id = tenant.id
    elif session.get(Tenant, tenant_id) is None:
        session.add(Tenant(id=tenant_id, name=name))
        session.flush()
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(tenant_id=tenant_id, key_hash=hash_key(plain), prefix=plain[:10], name=name)
    session.add(row)
    session.commit()
    session.refresh(row)
    _keys_seen.add(_database(session))
    return plain, row


def lookup(session: Session, key: str) -> Principal | None:
    return _lookup_hash(session, hash_key(key))


def _lookup_hash(session: Session, digest: str) -> Principal | None:
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == digest)).first()
    if row is None or row.revoked:
        return None
    return Principal(tenant_id=row.tenant_id, key_id=row.id)


_key_cache: dict[tuple[str, str], tuple[float, Principal | None]] = {}


def cached_lookup(session: Session, key: str) -> Principal | None:
    """`lookup` remembered for `KEY_CACHE_TTL_S` seconds per process (unknown keys too).

    Every request names its key, and the database read behind it costs more than the route itself
    on the common reads; a few seconds of staleness is the price of a revocation made elsewhere
    (`revoke` in this process takes effect at once). Entries are keyed by database as well, so
    processes that switch databases (tests) never see another one's keys.
    """
    entry = (_database(session), hash_key(key))
    now = time.monotonic()
    cached = _key_cache.get(entry)
    if cached is not None and cached[0] > now:
        return cached[1]
    principal = _lookup_hash(session, entry[1])
    if len(_key_cache) >= KEY_CACHE_MAX:  # random keys from a scanner must not grow it without bound
        _key_cache.clear()
    _key_cache[entry] = (now + KEY_CACHE_TTL_S, principal)
    return principal


_keys_seen: set[str] = set()


def keys_exist(session: Session) -> bool:
    """Whether any key was ever created, revoked ones included.

    Anonymous local access ends with the first key for good: revoking every key must lock the
    service, not silently reopen it to anyone who can reach the port. Because the answer never
    turns back to False, a True is remembered for the process's life.
    """
    database = _database(session)
    if database in _keys_seen:
        return True
    count = session.exec(select(func.count()).select_from(ApiKey)).one()
    if int(count) > 0:
        _keys_seen.add(database)
        return True
    return False


def _database(session: Session) -> str:
    return str(session.get_bind().engine.url)


def revoke(session: Session, prefix_or_id: str) -> int:
    rows = session.exec(select(ApiKey).where((ApiKey.id == prefix_or_id) | (ApiKey.prefix == prefix_or_id))).all()
    for row in rows:
        row.revoked = True
        session.add(row)
    session.commit()
    _key_cache.clear()
    return len(rows)
