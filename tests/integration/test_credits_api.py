"""``GET /api/credits``, ``GET /api/credits/transactions`` and ``flowai credits ...``."""

from __future__ import annotations

import asyncio

import pytest

from billing.service import CreditService
from persistence.db import Database
from persistence.ledger_pg import PgLedgerStore
from server.cli.main import main
from tests.support.server import RunningServer


async def flowai(*argv: str) -> int:
    # The CLI runs its own event loop, so it runs in a thread here.
    return await asyncio.to_thread(main, list(argv))


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> str:
    monkeypatch.setenv("FLOWAI_DATABASE_URL", database_url)
    return database_url


async def test_balance_and_ledger_over_rest(pg_server: RunningServer) -> None:
    credits = CreditService(PgLedgerStore(pg_server.services.db))
    await credits.grant("alice", 100, key="g", reason="welcome")
    placed = await credits.place_hold("alice", 30, key="job-1:hold", job_id="job-1")
    assert placed.hold is not None
    for i in range(4):
        await credits.grant("alice", 1, key=f"bonus-{i}", reason="daily bonus")
    await credits.grant("bob", 7, key="g", reason="welcome")

    async with pg_server.client("alice") as http:
        response = await http.get("/api/credits")
        assert response.status_code == 200
        assert response.json() == {"balance": 104, "held": 30, "available": 74}

        first = (await http.get("/api/credits/transactions", params={"limit": 4})).json()
        assert [t["kind"] for t in first["items"]] == ["grant"] * 4
        assert [t["balance_after"] for t in first["items"]] == [104, 103, 102, 101]
        assert first["next_before"] == first["items"][-1]["id"]
        second = await http.get(
            "/api/credits/transactions", params={"limit": 4, "before": first["next_before"]}
        )
        items = second.json()["items"]
        assert [t["kind"] for t in items] == ["hold", "grant"]
        assert items[0]["hold_id"] == str(placed.hold.id)
        assert items[0]["job_id"] == "job-1"
        assert items[0]["held_after"] == 30
        assert second.json()["next_before"] is None

    async with pg_server.client("bob") as http:
        assert (await http.get("/api/credits")).json() == {"balance": 7, "held": 0, "available": 7}
        page = (await http.get("/api/credits/transactions")).json()
        assert [t["amount"] for t in page["items"]] == [7]

    async with pg_server.client("carol") as http:
        assert (await http.get("/api/credits")).json() == {"balance": 0, "held": 0, "available": 0}
        assert (await http.get("/api/credits/transactions")).json() == {
            "items": [],
            "next_before": None,
        }


async def test_rest_errors(pg_server: RunningServer) -> None:
    async with pg_server.client("alice") as http:
        bad = await http.get("/api/credits/transactions", params={"limit": 0})
        assert bad.status_code == 422
        assert bad.json()["error"]["code"] == "invalid_request"
        big = await http.get("/api/credits/transactions", params={"limit": 101})
        assert big.status_code == 422
    async with pg_server.client("alice") as http:
        http.headers.pop("Authorization")
        anonymous = await http.get("/api/credits")
        assert anonymous.status_code == 401
        assert "error" in anonymous.json()


async def test_cli_grant_show_and_check(cli_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert await flowai("credits", "grant", "alice", "250", "--key", "promo-1") == 0
    assert "granted 250 credits to alice" in capsys.readouterr().out
    # The same key again is a retry: nothing more is granted.
    assert await flowai("credits", "grant", "alice", "250", "--key", "promo-1") == 0
    assert "already granted 250" in capsys.readouterr().out
    assert await flowai("credits", "grant", "alice", "300", "--key", "promo-1") == 1
    assert "exists_with_different_request" in capsys.readouterr().err
    assert await flowai("credits", "grant", "alice", "0") == 2
    assert "amount" in capsys.readouterr().err
    assert await flowai("credits", "grant", "alice", "50", "--purchase", "--reason", "pi_77") == 0
    capsys.readouterr()

    assert await flowai("credits", "show", "alice") == 0
    out = capsys.readouterr().out
    assert "balance 300  held 0  available 300" in out
    assert "purchase" in out and "pi_77" in out

    assert await flowai("credits", "check") == 0
    assert "ok: 1 user, 0 holds, 2 transactions" in capsys.readouterr().out


async def test_cli_check_finds_a_tampered_balance(
    cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await flowai("credits", "grant", "mallory", "10") == 0
    db = await Database.connect(cli_env, min_size=1, max_size=1)
    try:
        # Allowed by the constraints (available stays >= 0), but not by the ledger.
        await db.pool.execute("UPDATE user_credits SET balance = 1000 WHERE user_id = 'mallory'")
    finally:
        await db.close()
    capsys.readouterr()
    assert await flowai("credits", "check") == 1
    captured = capsys.readouterr()
    assert "mallory: balance_is_ledger_sum: balance 1000 != ledger 10" in captured.out
    assert "FAILED: 1 violation in 1 user, 0 holds, 1 transaction" in captured.err


async def test_cli_sweep_and_prices(
    cli_env: str, db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await flowai("credits", "sweep") == 0
    assert "expired 0 holds" in capsys.readouterr().out
    credits = CreditService(PgLedgerStore(db))
    await credits.grant("dan", 50, key="g", reason="topup")
    for i in range(3):
        await credits.place_hold("dan", 10, key=f"h{i}", ttl_s=60)
    await db.pool.execute(
        "UPDATE credit_holds SET created_at = created_at - interval '1 hour',"
        " expires_at = expires_at - interval '1 hour'"
    )
    assert await flowai("credits", "sweep", "--limit", "2") == 0
    assert "expired 3 holds" in capsys.readouterr().out
    assert (await credits.balance("dan")).held == 0

    assert await flowai("credits", "show", "nobody") == 0
    assert "balance 0  held 0  available 0\nno transactions" in capsys.readouterr().out
    assert await flowai("credits", "prices") == 0
    out = capsys.readouterr().out
    assert out.startswith("| Product |")
    assert "`openai/whisper-1`" in out
