"""Row-level security under Supabase's API roles, on a database prepared as Supabase's image
prepares one (tests/support/supabase.py), next to the server's own path (flowai_app_user)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from persistence.db import Database
from persistence.jobs_pg import ensure_queue_schema
from server.cli import main
from tests.support import pg
from tests.support import supabase as sb

ALICE = str(uuid.uuid4())  # owner of P
BOB = str(uuid.uuid4())  # viewer of P
CAROL = str(uuid.uuid4())  # owner of Q
DAVE = str(uuid.uuid4())  # member of nothing
P, Q = uuid.uuid4(), uuid.uuid4()
JOB_ALICE_P, JOB_CAROL, JOB_CAROL_Q = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
HOLD_ALICE, HOLD_CAROL = uuid.uuid4(), uuid.uuid4()
VOICE_ALICE, VOICE_CAROL = uuid.uuid4(), uuid.uuid4()

# What each user may read, per table: the rows' distinguishing column and its values.
KEYS = {
    "video_projects": "id::text",
    "project_members": "project_id || '/' || user_id",
    "doc_versions": "project_id::text",
    "video_tracks": "project_id::text",
    "video_clips": "project_id::text",
    "user_credits": "user_id",
    "credit_transactions": "user_id",
    "credit_holds": "id::text",
    "voice_clones": "id::text",
    "jobs": "id::text",
}
MEMBERS_P = {f"{P}/{ALICE}", f"{P}/{BOB}"}
EXPECTED: dict[str, dict[str, set[str]]] = {
    ALICE: {
        "video_projects": {str(P)},
        "project_members": MEMBERS_P,
        "doc_versions": {str(P)},
        "video_tracks": {str(P)},
        "video_clips": {str(P)},
        "user_credits": {ALICE},
        "credit_transactions": {ALICE},
        "credit_holds": {str(HOLD_ALICE)},
        "voice_clones": {str(VOICE_ALICE)},
        "jobs": {str(JOB_ALICE_P)},
    },
    BOB: {
        "video_projects": {str(P)},
        "project_members": MEMBERS_P,
        "doc_versions": {str(P)},
        "video_tracks": {str(P)},
        "video_clips": {str(P)},
        "user_credits": set(),
        "credit_transactions": set(),
        "credit_holds": set(),
        "voice_clones": set(),
        "jobs": {str(JOB_ALICE_P)},  # a collaborator sees the jobs of the project
    },
    CAROL: {
        "video_projects": {str(Q)},
        "project_members": {f"{Q}/{CAROL}"},
        "doc_versions": {str(Q)},
        "video_tracks": {str(Q)},
        "video_clips": {str(Q)},
        "user_credits": {CAROL},
        "credit_transactions": {CAROL},
        "credit_holds": {str(HOLD_CAROL)},
        "voice_clones": {str(VOICE_CAROL)},
        "jobs": {str(JOB_CAROL), str(JOB_CAROL_Q)},
    },
    DAVE: {table: set() for table in KEYS},
}


async def migrate(database: str) -> None:
    """What `flowai migrate` does, connected as Supabase's `postgres` (not a superuser)."""
    db = await Database.connect(sb.dsn(database, sb.OWNER), min_size=1, max_size=2)
    try:
        await db.migrate()
        await ensure_queue_schema(db)
    finally:
        await db.close()


async def seed(conn: asyncpg.Connection) -> None:
    """Rows for two projects and three users, written as the server writes them."""
    for project, owner in ((P, ALICE), (Q, CAROL)):
        await conn.execute(
            "INSERT INTO video_projects (id, owner_id, title) VALUES ($1, $2, 'T')", project, owner
        )
        await conn.execute(
            "INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, 'owner')",
            project,
            owner,
        )
        await conn.execute(
            "INSERT INTO doc_versions (project_id, version, kind, payload) "
            "VALUES ($1, 1, 'auto', '\\x00')",
            project,
        )
        await conn.execute(
            "INSERT INTO video_tracks (project_id, track_id, kind, name, order_key) "
            "VALUES ($1, 't', 'video', 'V', 'a')",
            project,
        )
        await conn.execute(
            "INSERT INTO video_clips (project_id, clip_id, track_id, kind, start_ms, duration_ms)"
            " VALUES ($1, 'c', 't', 'video', 0, 10)",
            project,
        )
    await conn.execute(
        "INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, 'viewer')", P, BOB
    )
    now = datetime.now(UTC)
    for user, hold in ((ALICE, HOLD_ALICE), (CAROL, HOLD_CAROL)):
        await conn.execute("INSERT INTO user_credits (user_id, balance) VALUES ($1, 100)", user)
        await conn.execute(
            "INSERT INTO credit_transactions (user_id, kind, amount, balance_delta, held_delta,"
            " balance_after, held_after, idempotency_key, request_digest, reason)"
            " VALUES ($1, 'grant', 100, 100, 0, 100, 0, 'g', 'd', 'test')",
            user,
        )
        await conn.execute(
            "INSERT INTO credit_holds (id, user_id, amount, status, created_at, expires_at)"
            " VALUES ($1, $2, 5, 'pending', $3, $4)",
            hold,
            user,
            now,
            now + timedelta(hours=1),
        )
    for job, user, project in ((JOB_ALICE_P, ALICE, P), (JOB_CAROL, CAROL, None)):
        await conn.execute(
            "INSERT INTO jobs (id, kind, user_id, project_id, status)"
            " VALUES ($1, 'content', $2, $3, 'queued')",
            job,
            user,
            project,
        )
    await conn.execute(
        "INSERT INTO jobs (id, kind, user_id, project_id, status)"
        " VALUES ($1, 'render', $2, $3, 'queued')",
        JOB_CAROL_Q,
        CAROL,
        Q,
    )
    for voice, user in ((VOICE_ALICE, ALICE), (VOICE_CAROL, CAROL)):
        await conn.execute(
            "INSERT INTO voice_clones (id, user_id, name, provider_voice_id, sample_count)"
            " VALUES ($1, $2, 'v', $3, 1)",
            voice,
            user,
            str(voice),
        )


@pytest.fixture
async def supabase_db() -> AsyncIterator[str]:
    """A Supabase-like database, migrated and seeded; yields its name."""
    name = pg.fresh_name()
    await sb.create_database(name)
    try:
        await migrate(name)
        conn = await asyncpg.connect(sb.dsn(name, sb.OWNER))
        try:
            await seed(conn)
        finally:
            await conn.close()
        yield name
    finally:
        await pg.drop_database(name)


@pytest.fixture
async def api(supabase_db: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection as PostgREST holds one: logged in as `authenticator`."""
    conn = await asyncpg.connect(sb.dsn(supabase_db, sb.AUTHENTICATOR))
    yield conn
    await conn.close()


async def relations(database: str, kinds: str = "rpvmfS") -> list[str]:
    """Our relations in public (read as their owner: the API roles may not call this)."""
    conn = await asyncpg.connect(sb.dsn(database, sb.OWNER))
    try:
        rows = await conn.fetch(
            "SELECT rel::text AS name FROM flowai_supabase_relations()"
            " WHERE strpos($1, kind::text) > 0",
            kinds,
        )
    finally:
        await conn.close()
    return [r["name"] for r in rows]


async def read_keys(conn: asyncpg.Connection, role: str, user: str | None) -> dict[str, set[str]]:
    seen = {}
    claims = sb.user_claims(user) if user else None
    for table, key in KEYS.items():
        async with sb.api_request(conn, role, claims) as c:
            seen[table] = {r[0] for r in await c.fetch(f"SELECT {key} FROM {table}")}
    return seen


async def test_authenticated_users_read_exactly_their_rows(api: asyncpg.Connection) -> None:
    for user, expected in EXPECTED.items():
        assert await read_keys(api, "authenticated", user) == expected, user


async def test_authenticated_without_a_user_reads_nothing(api: asyncpg.Connection) -> None:
    assert await read_keys(api, "authenticated", None) == EXPECTED[DAVE]


async def test_anon_reads_nothing_even_with_a_users_sub(
    supabase_db: str, api: asyncpg.Connection
) -> None:
    names = await relations(supabase_db)
    assert {"doc_updates", "procrastinate_jobs", "credit_accounts"} <= set(names)
    assert any(name.endswith("_seq") for name in names)
    for claims in (None, {"sub": ALICE, "role": "anon"}):
        for name in names:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with sb.api_request(api, "anon", claims) as c:
                    await c.fetch(f"SELECT 1 FROM {name} LIMIT 1")


async def test_the_server_only_tables_are_closed_to_authenticated(api: asyncpg.Connection) -> None:
    # The document log and states, the credit view (a view would bypass RLS), bookkeeping.
    for table in (
        "doc_updates",
        "doc_states",
        "credit_accounts",
        "revoked_users",
        "schema_migrations",
        "job_queue_schema",
        "procrastinate_jobs",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with sb.api_request(api, "authenticated", sb.user_claims(ALICE)) as c:
                await c.fetch(f"SELECT 1 FROM {table} LIMIT 1")


async def test_no_write_goes_through_the_api_roles(
    supabase_db: str, api: asyncpg.Connection
) -> None:
    tables = await relations(supabase_db, "rp")
    assert {"user_credits", "credit_transactions", "credit_holds", "jobs"} <= set(tables)
    attempts = 0
    for role in sb.API_ROLES:  # service_role too: it bypasses RLS, so rights are all there is
        claims = sb.user_claims(ALICE) if role == "authenticated" else {"role": role}
        for table in tables:
            column = await api.fetchval(
                "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0"
                " AND attidentity = '' AND attgenerated = '' ORDER BY attnum LIMIT 1",
                table,
            )
            for statement in (
                f"INSERT INTO {table} DEFAULT VALUES",
                f"UPDATE {table} SET {column} = {column}",
                f"DELETE FROM {table}",
                f"TRUNCATE {table}",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    async with sb.api_request(api, role, claims, write=True) as c:
                        await c.execute(statement)
                attempts += 1
    assert attempts == len(sb.API_ROLES) * len(tables) * 4
    # Nothing changed: the member still reads all of their rows.
    assert await read_keys(api, "authenticated", ALICE) == EXPECTED[ALICE]


async def test_service_role_reads_everything(api: asyncpg.Connection) -> None:
    async with sb.api_request(api, "service_role", {"role": "service_role"}) as c:
        assert await c.fetchval("SELECT count(*) FROM video_projects") == 2
        assert await c.fetchval("SELECT count(*) FROM credit_accounts") >= 2


async def test_catalog_grants_match_the_rules(supabase_db: str) -> None:
    """Checked on the catalogs, so a table a later migration adds cannot slip through."""
    conn = await asyncpg.connect(pg.dsn_for(supabase_db))
    try:
        grants = await conn.fetch(
            """SELECT c.relname, c.relkind, r.rolname, a.privilege_type
                 FROM pg_class c, aclexplode(c.relacl) a, pg_roles r
                WHERE c.relnamespace = 'public'::regnamespace AND r.oid = a.grantee
                  AND r.rolname IN ('anon', 'authenticated', 'service_role')"""
        )
        readable = set(KEYS)
        for g in grants:
            assert g["rolname"] != "anon", g
            assert g["privilege_type"] == "SELECT" and g["relkind"] != "S", g
            if g["rolname"] == "authenticated":
                assert g["relname"] in readable, g
        assert {g["relname"] for g in grants if g["rolname"] == "authenticated"} == readable
        # Functions the API would expose as /rpc: only the membership test, for authenticated.
        callable_ = await conn.fetch(
            """SELECT p.proname, r.rolname FROM pg_proc p, pg_roles r
                WHERE p.pronamespace = 'public'::regnamespace
                  AND r.rolname IN ('anon', 'authenticated', 'service_role')
                  AND p.prorettype <> 'trigger'::regtype
                  AND has_function_privilege(r.oid, p.oid, 'EXECUTE')"""
        )
        assert {(c["proname"], c["rolname"]) for c in callable_} == {
            ("flowai_auth_is_member", "authenticated")
        }
        policies = await conn.fetch(
            "SELECT tablename, roles, cmd FROM pg_policies WHERE policyname = 'supabase_read'"
        )
        assert {p["tablename"] for p in policies} == readable
        assert all(p["roles"] == ["authenticated"] and p["cmd"] == "SELECT" for p in policies)
        # Supabase's own schema is untouched: only what its setup put there.
        assert {
            r["proname"]
            for r in await conn.fetch(
                "SELECT proname FROM pg_proc WHERE pronamespace = 'auth'::regnamespace"
            )
        } == {"uid", "role", "jwt"}
    finally:
        await conn.close()


async def test_the_servers_own_path_works_unchanged(supabase_db: str) -> None:
    db = await Database.connect(sb.dsn(supabase_db, sb.OWNER), min_size=1, max_size=2)
    try:
        async with db.as_user(BOB) as conn:
            assert await conn.fetchval("SELECT count(*) FROM video_projects") == 1
            assert await conn.fetchval("SELECT count(*) FROM project_members") == 2
        async with db.as_user(DAVE) as conn:
            assert await conn.fetchval("SELECT count(*) FROM video_tracks") == 0
        # Re-running is a no-op, and takes no lock on the tables (nothing to change).
        assert await db.migrate() == []
        assert await db.fetchval("SELECT flowai_supabase_access()") == "supabase: 0 change(s)"
    finally:
        await db.close()


async def test_a_plain_database_on_the_same_cluster_gets_nothing_of_it() -> None:
    name = pg.fresh_name()
    await sb.create_database(name, supabase=False)  # the roles exist in the cluster now
    try:
        await migrate(name)
        conn = await asyncpg.connect(pg.dsn_for(name))
        try:
            roles = await conn.fetchval(
                "SELECT count(*) FROM pg_roles WHERE rolname = ANY($1::text[])", list(sb.API_ROLES)
            )
            assert roles == 3
            assert await conn.fetchval("SELECT flowai_supabase_detected()") is False
            helper = await conn.fetchval("SELECT to_regprocedure('flowai_auth_is_member(uuid)')")
            assert helper is None
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM pg_policies WHERE 'authenticated' = ANY(roles)"
                )
                == 0
            )
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a, pg_roles r"
                    " WHERE r.oid = a.grantee AND r.rolname = ANY($1::text[])",
                    list(sb.API_ROLES),
                )
                == 0
            )
        finally:
            await conn.close()
    finally:
        await pg.drop_database(name)


async def test_supabase_set_up_after_migrating_is_covered_by_flowai_migrate(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    name = pg.fresh_name()
    await sb.create_database(name, supabase=False)
    try:
        await migrate(name)
        conn = await asyncpg.connect(pg.dsn_for(name))
        try:
            await seed(conn)
            # Now it becomes a Supabase database, and someone opens every table to the API.
            await sb.install_auth(name)
            await conn.execute(
                "GRANT ALL ON ALL TABLES IN SCHEMA public TO anon, authenticated, service_role"
            )
        finally:
            await conn.close()
        monkeypatch.setenv("FLOWAI_DATABASE_URL", sb.dsn(name, sb.OWNER))
        await asyncio.to_thread(main, ["migrate"])
        assert "up to date" in capsys.readouterr().out
        api = await asyncpg.connect(sb.dsn(name, sb.AUTHENTICATOR))
        try:
            assert await read_keys(api, "authenticated", BOB) == EXPECTED[BOB]
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with sb.api_request(api, "anon", None) as c:
                    await c.fetch("SELECT 1 FROM user_credits")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with sb.api_request(
                    api, "authenticated", sb.user_claims(ALICE), write=True
                ) as c:
                    await c.execute("UPDATE user_credits SET balance = balance + 1000")
        finally:
            await api.close()
    finally:
        await pg.drop_database(name)
