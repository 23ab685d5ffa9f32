"""Persistence: SQLModel tables, engine, migrations and small repository helpers."""
