"""Throwaway PostgreSQL databases for tests: one migrated template, one copy per test."""

from __future__ import annotations

import os
import uuid

import asyncpg

from persistence.db import Database

ADMIN_DSN = os.environ.get("FLOWAI_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def dsn_for(database: str) -> str:
    base, _, _ = ADMIN_DSN.rpartition("/")
    return f"{base}/{database}"


async def create_database(name: str, *, template: str | None = None) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        suffix = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{suffix}')
    finally:
        await conn.close()


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def create_template() -> str:
    name = f"flowai_tpl_{os.getpid()}"
    await create_database(name)
    db = await Database.connect(dsn_for(name), min_size=1, max_size=2)
    try:
        await db.migrate()
    finally:
        await db.close()
    return name


def fresh_name() -> str:
    return f"flowai_t_{uuid.uuid4().hex[:12]}"


async def new_project(db: Database) -> str:
    """A bare project row (owner ``u``) for tests of the document store; returns its id."""
    project_id = uuid.uuid4()
    await db.pool.execute(
        "INSERT INTO video_projects (id, owner_id, title) VALUES ($1, 'u', 't')", project_id
    )
    return str(project_id)
