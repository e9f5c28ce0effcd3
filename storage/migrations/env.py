"""Alembic environment. tiendo runs migrations through storage.migrate on its own async engine
(the connection arrives in config.attributes); `alembic -c storage/migrations/alembic.ini` also
works for developers, reading the URL from TIENDO_DATABASE_URL."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode copies the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=os.environ.get("TIENDO_DATABASE_URL", "sqlite+aiosqlite:///data/tiendo.db"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone() -> None:
    url = os.environ.get("TIENDO_DATABASE_URL", "sqlite+aiosqlite:///data/tiendo.db")
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(_configure)
    await engine.dispose()


if context.is_offline_mode():
    run_offline()
elif config.attributes.get("connection") is not None:
    _configure(config.attributes["connection"])
else:
    asyncio.run(_run_standalone())
