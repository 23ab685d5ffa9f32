"""API keys: shown once, stored only as a SHA-256, each owned by one tenant.

Keys are long random tokens, so a plain (unsalted) SHA-256 is enough to make a leaked table
useless, and it lets a request's key be found by an indexed lookup of its hash.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlmodel import Session, func, select

from longread.storage.models import LOCAL_TENANT, ApiKey, Tenant

KEY_PREFIX = "lr_"


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
    return plain, row


def lookup(session: Session, key: str) -> Principal | None:
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).first()
    if row is None or row.revoked:
        return None
    return Principal(tenant_id=row.tenant_id, key_id=row.id)


def keys_exist(session: Session) -> bool:
    """Whether any key was ever created, revoked ones included.

    Anonymous local access ends with the first key for good: revoking every key must lock the
    service, not silently reopen it to anyone who can reach the port.
    """
    count = session.exec(select(func.count()).select_from(ApiKey)).one()
    return int(count) > 0


def revoke(session: Session, prefix_or_id: str) -> int:
    rows = session.exec(select(ApiKey).where((ApiKey.id == prefix_or_id) | (ApiKey.prefix == prefix_or_id))).all()
    for row in rows:
        row.revoked = True
        session.add(row)
    session.commit()
    return len(rows)
