"""A PostgreSQL database prepared the way Supabase's image prepares its own, and requests made
the way Supabase's API (PostgREST) makes them.

What is reproduced, from supabase/postgres ``migrations/db/init-scripts`` and supabase/auth's
migrations:

- the roles ``anon`` and ``authenticated`` (NOLOGIN NOINHERIT), ``service_role`` (NOLOGIN
  NOINHERIT BYPASSRLS) and ``authenticator`` (LOGIN NOINHERIT, member of the three): PostgREST
  logs in as ``authenticator`` and switches role per request;
- a non-superuser stand-in for Supabase's ``postgres`` role (LOGIN CREATEROLE CREATEDB
  BYPASSRLS), which is the role the server connects and migrates as;
- in the database: schema ``auth`` with ``auth.uid()``, ``auth.role()`` and ``auth.jwt()`` as
  Supabase defines them (``request.jwt.claim.sub``, else ``request.jwt.claims`` ->> 'sub'),
  USAGE on ``auth`` for the API roles (and ``postgres``), USAGE on ``public`` for the API roles,
  and the default privileges that give the API roles ALL on every table, sequence and function
  ``postgres`` creates in ``public``.

Roles are cluster-wide and other tests run on the same cluster: roles are created only when
missing (under an advisory lock, tolerating a concurrent creator), never altered or dropped.
They change nothing for other databases: our migrations act only where ``auth.uid()`` exists
in the database itself, and privileges, default privileges and schemas are per database.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tests.support import pg

API_ROLES: Final = ("anon", "authenticated", "service_role")
AUTHENTICATOR: Final = "authenticator"
# Supabase's `postgres` is not a superuser; this stands in for it under a name of its own.
OWNER: Final = "flowai_test_sb_postgres"
_ROLES_LOCK: Final = 0x53425242  # "SBRB"

_ROLES: Final = {
    "anon": "NOLOGIN NOINHERIT",
    "authenticated": "NOLOGIN NOINHERIT",
    "service_role": "NOLOGIN NOINHERIT BYPASSRLS",
    AUTHENTICATOR: "LOGIN NOINHERIT",
    OWNER: "LOGIN CREATEROLE CREATEDB BYPASSRLS",
}

# As Supabase's auth service defines them (supabase/auth migrations).
AUTH_SCHEMA_SQL: Final = """
CREATE SCHEMA auth;
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;
CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;
CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role, {owner};
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public
    GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public
    GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public
    GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
"""


def dsn(database: str, user: str) -> str:
    parts = urlsplit(pg.dsn_for(database))
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


async def ensure_roles() -> None:
    """Create Supabase's roles (and the ``postgres`` stand-in) where missing; never alter one."""
    conn = await asyncpg.connect(pg.ADMIN_DSN)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _ROLES_LOCK)
        try:
            for role, attributes in _ROLES.items():
                try:
                    await conn.execute(f'CREATE ROLE "{role}" {attributes}')
                except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
                    pass  # made by an earlier run, or by a creator not using this lock
            for role in API_ROLES:
                await conn.execute(f'GRANT "{role}" TO "{AUTHENTICATOR}"')
            rows = await conn.fetch(
                "SELECT rolname, rolsuper, rolinherit, rolbypassrls FROM pg_roles"
                " WHERE rolname = ANY($1::text[])",
                list(_ROLES),
            )
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _ROLES_LOCK)
    finally:
        await conn.close()
    found = {r["rolname"]: r for r in rows}
    for role in API_ROLES:
        r = found[role]
        assert not r["rolsuper"] and not r["rolinherit"], f"role {role} is not as Supabase's"
        assert r["rolbypassrls"] == (role == "service_role"), f"role {role} is not as Supabase's"
    assert not found[OWNER]["rolsuper"]


async def create_database(name: str, *, supabase: bool = True) -> None:
    """An empty database owned by the ``postgres`` stand-in; with Supabase's auth schema and
    default privileges unless ``supabase`` is false (a plain database on the same cluster)."""
    await ensure_roles()
    conn = await asyncpg.connect(pg.ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}" OWNER "{OWNER}"')
    finally:
        await conn.close()
    if supabase:
        await install_auth(name)


async def install_auth(name: str) -> None:
    """Turn database ``name`` into a Supabase one (as a superuser, as Supabase's admin does)."""
    conn = await asyncpg.connect(pg.dsn_for(name))
    try:
        await conn.execute(AUTH_SCHEMA_SQL.replace("{owner}", f'"{OWNER}"'))
    finally:
        await conn.close()


@asynccontextmanager
async def api_request(
    conn: asyncpg.Connection, role: str, claims: dict[str, object] | None, *, write: bool = False
) -> AsyncIterator[asyncpg.Connection]:
    """One request as PostgREST runs it: a transaction (read-only for reads), the role set for
    the transaction, the JWT claims in ``request.jwt.claims``. ``conn`` is logged in as
    ``authenticator``."""
    async with conn.transaction(readonly=not write):
        await conn.execute(f'SET LOCAL ROLE "{role}"')
        await conn.execute(
            "SELECT set_config('request.jwt.claims', $1, true),"
            " set_config('request.method', $2, true)",
            json.dumps(claims or {"role": role}),
            "POST" if write else "GET",
        )
        yield conn


def user_claims(user_id: str) -> dict[str, object]:
    """The claims of a Supabase access token for ``user_id``."""
    return {"sub": user_id, "role": "authenticated", "aud": "authenticated", "exp": 4102444800}
