"""`python -m longread.api.keys create NAME` prints a new API key (shown once); `list` and `revoke` manage them."""

from __future__ import annotations

import typer
from sqlmodel import col, select

from longread.api.security import create_key, revoke
from longread.storage.db import session_scope
from longread.storage.models import ApiKey

cli = typer.Typer(help="Manage Longread API keys.", no_args_is_help=True)


@cli.command("create")
def create(name: str, tenant: str | None = typer.Option(None, help="Existing tenant id to add the key to.")) -> None:
    """Create a key for a new tenant (or for --tenant) and print it once."""
    with session_scope() as session:
        plain, row = create_key(session, name, tenant_id=tenant)
    typer.echo(plain)
    typer.echo(f"tenant {row.tenant_id}, key id {row.id}", err=True)


@cli.command("list")
def list_keys() -> None:
    """List keys (prefix, tenant, name, revoked); the keys themselves are not stored."""
    with session_scope() as session:
        for row in session.exec(select(ApiKey).order_by(col(ApiKey.created_at))):
            typer.echo(f"{row.prefix}…\t{row.tenant_id}\t{row.name}\t{'revoked' if row.revoked else 'active'}")


@cli.command("revoke")
def revoke_key(prefix_or_id: str) -> None:
    """Revoke a key by its id or printed prefix."""
    with session_scope() as session:
        count = revoke(session, prefix_or_id)
    typer.echo(f"revoked {count} key(s)")


if __name__ == "__main__":
    cli()
