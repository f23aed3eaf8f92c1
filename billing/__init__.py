"""Credits: an exact, append-only ledger with two-phase holds, and the price table.

``billing`` imports none of the product's other packages. The rules are pure: ``requests``
(what a caller may ask, checked when built, and its fingerprint), ``ledger`` (accounts, holds,
entries, the ``Status`` outcomes and ``decide``), ``results`` (what an operation returns, and the
error each refusal raises) and ``audit`` (the invariants over one user's whole ledger). Around
them: ``ports`` the storage port, ``memory`` its in-memory twin, ``service`` the operations, and
``prices`` what each provider call costs in credits. ``persistence.ledger_pg`` implements the
port on PostgreSQL.
"""
