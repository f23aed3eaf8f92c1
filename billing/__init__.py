"""Credits: an exact, append-only ledger with two-phase holds, and the price table.

``billing`` imports none of the product's other packages. ``ledger`` holds the rules (pure),
``ports`` the storage port, ``memory`` its in-memory twin, ``service`` the operations, and
``prices`` what each provider call costs in credits. ``persistence.ledger_pg`` implements the
port on PostgreSQL.
"""
