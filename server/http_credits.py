"""REST routes for credits (balance and ledger), read under the caller's identity."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/credits", tags=["credits"])
