"""Collections: named sets of a tenant's documents, and their membership.

Everything here is scoped to a tenant: another tenant's collection is not found (the API answers 404),
and only the tenant's own documents can join one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from longread.storage.db import rows_changed
from longread.storage.models import (
    LOCAL_TENANT,
    Collection,
    CollectionAnswer,
    CollectionDocument,
    Document,
    RetrievalIndex,
)


class CollectionError(ValueError):
    """A collection request that cannot be done: a bad or taken name, a document of another tenant."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Member:
    """A document of a collection, as listed (without its text)."""

    document_id: str
    filename: str
    n_tokens: int


MAX_NAME = 200


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise CollectionError("bad_collection_name", f"a collection name has 1 to {MAX_NAME} characters")
    return name


def find_collection(session: Session, key: str, tenant_id: str = LOCAL_TENANT) -> Collection | None:
    """A tenant's collection by id or by name."""
    found = session.get(Collection, key)
    if found is not None and found.tenant_id == tenant_id:
        return found
    query = select(Collection).where(Collection.tenant_id == tenant_id, Collection.name == key.strip())
    return session.exec(query).first()


def create_collection(
    session: Session, name: str, document_ids: Sequence[str] = (), tenant_id: str = LOCAL_TENANT
) -> Collection:
    """A new collection holding the given documents; a name the tenant already uses is refused."""
    name = _clean_name(name)
    if session.exec(select(Collection).where(Collection.tenant_id == tenant_id, Collection.name == name)).first():
        raise CollectionError("collection_exists", f"a collection named {name!r} already exists")
    collection = Collection(name=name, tenant_id=tenant_id)
    session.add(collection)
    session.flush()
    add_documents(session, collection, document_ids)
    return collection


def add_documents(session: Session, collection: Collection, document_ids: Sequence[str]) -> int:
    """Add the tenant's documents (already members are skipped); returns how many joined."""
    wanted = list(dict.fromkeys(document_ids))
    if wanted:
        owned = set(
            session.exec(
                select(Document.id).where(col(Document.id).in_(wanted), Document.tenant_id == collection.tenant_id)
            )
        )
        missing = [d for d in wanted if d not in owned]
        if missing:
            raise CollectionError("document_not_found", f"no such document: {missing[0]}")
    present = set(member_ids(session, collection.id))
    added = [d for d in wanted if d not in present]
    for document_id in added:
        session.add(CollectionDocument(collection_id=collection.id, document_id=document_id))
    session.commit()
    return len(added)


def gather_into(session: Session, name: str, document_ids: Sequence[str], tenant_id: str = LOCAL_TENANT) -> Collection:
    """The tenant's collection by that name (or id) with these documents added, created when there is none."""
    found = find_collection(session, name, tenant_id=tenant_id)
    if found is None:
        return create_collection(session, name, document_ids, tenant_id=tenant_id)
    add_documents(session, found, document_ids)
    return found


def remove_documents(session: Session, collection: Collection, document_ids: Sequence[str]) -> int:
    """Remove documents from the collection (the documents stay stored); returns how many left.

    A document that is now in no collection loses its retrieval index (`drop_unused_indexes`)."""
    removed: list[str] = []
    for document_id in dict.fromkeys(document_ids):
        row = session.get(CollectionDocument, (collection.id, document_id))
        if row is not None:
            session.delete(row)
            removed.append(document_id)
    session.flush()
    drop_unused_indexes(session, removed)
    session.commit()
    return len(removed)


def drop_unused_indexes(session: Session, document_ids: Sequence[str]) -> int:
    """Delete the retrieval indexes of those of these documents that belong to no collection any more.

    An index is built for each document as it joins a collection; one left in no collection is dropped
    with it (a later question on the document alone builds it again). The caller commits. Returns how
    many index rows went.
    """
    if not document_ids:
        return 0
    kept = set(
        session.exec(
            select(CollectionDocument.document_id).where(col(CollectionDocument.document_id).in_(document_ids))
        )
    )
    unused = [d for d in dict.fromkeys(document_ids) if d not in kept]
    if not unused:
        return 0
    return rows_changed(session.execute(delete(RetrievalIndex).where(col(RetrievalIndex.document_id).in_(unused))))


def member_ids(session: Session, collection_id: str) -> list[str]:
    """The ids of a collection's documents, in the order they joined."""
    query = (
        select(CollectionDocument.document_id)
        .where(CollectionDocument.collection_id == collection_id)
        .order_by(col(CollectionDocument.added_at), col(CollectionDocument.document_id))
    )
    return list(session.exec(query))


def members(session: Session, collection_id: str) -> list[Member]:
    """A collection's documents with their names and sizes, without loading their text."""
    query = (
        select(Document.id, Document.filename, Document.n_tokens)
        .join(CollectionDocument, col(CollectionDocument.document_id) == col(Document.id))
        .where(CollectionDocument.collection_id == collection_id)
        .order_by(col(CollectionDocument.added_at), col(Document.id))
    )
    return [Member(document_id, filename, n_tokens) for document_id, filename, n_tokens in session.exec(query)]


def list_collections(session: Session, tenant_id: str = LOCAL_TENANT) -> list[tuple[Collection, int]]:
    """A tenant's collections, by name, each with its number of documents."""
    count = (
        select(CollectionDocument.collection_id, func.count().label("n"))
        .group_by(col(CollectionDocument.collection_id))
        .subquery()
    )
    query = (
        select(Collection, func.coalesce(count.c.n, 0))
        .outerjoin(count, count.c.collection_id == col(Collection.id))
        .where(Collection.tenant_id == tenant_id)
        .order_by(col(Collection.name))
    )
    return [(collection, int(n)) for collection, n in session.exec(query)]


def delete_collection(session: Session, collection: Collection) -> None:
    """Delete a collection, its membership and its answers (the documents stay; an index of a document
    that is now in no collection is dropped)."""
    left = []
    for row in session.exec(select(CollectionDocument).where(CollectionDocument.collection_id == collection.id)):
        left.append(row.document_id)
        session.delete(row)
    session.flush()
    drop_unused_indexes(session, left)
    for answer in session.exec(select(CollectionAnswer).where(CollectionAnswer.collection_id == collection.id)):
        session.delete(answer)
    session.delete(collection)
    session.commit()
