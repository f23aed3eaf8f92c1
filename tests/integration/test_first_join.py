"""The read that opens a cold room for its first joiner, on PostgreSQL: the member list, and the
document only for a member, in one statement that agrees with the separate reads."""

from __future__ import annotations

import json
import uuid

from pycrdt import Doc, Map

import persistence.first_join
from persistence.db import Database
from persistence.documents import PgDocumentStore
from persistence.first_join import PgFirstJoinReader
from persistence.projects import Role
from persistence.projects_pg import PgProjectDirectory


async def _project(db: Database, members: dict[str, Role]) -> str:
    directory = PgProjectDirectory(db)
    project = await directory.create_project("owner", "Cut")
    for user_id, role in members.items():
        await directory.set_member(project.id, user_id, role)
    return str(project.id)


def _edits(count: int) -> list[bytes]:
    doc: Doc[dict[str, object]] = Doc()
    meta = doc.get("meta", type=Map)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for i in range(count):
        meta[f"k{i}"] = i
    return updates


async def test_a_member_gets_the_list_and_the_document_as_stored(db: Database) -> None:
    doc_id = await _project(db, {"vera": Role.VIEWER, "ed": Role.EDITOR})
    store = PgDocumentStore(db)
    await store.append(doc_id, _edits(5))
    await store.compact(doc_id)
    await store.append(doc_id, _edits(3)[1:])  # a log after the compacted state
    read = await PgFirstJoinReader(db).read_first_join(doc_id, "vera")
    assert read.members == {"owner": True, "ed": True, "vera": False}
    assert read.members == await PgProjectDirectory(db).members(doc_id)
    assert read.updates == list(await store.load(doc_id))
    assert len(read.updates) == 3


async def test_a_member_of_an_empty_document_gets_no_updates_but_not_none(db: Database) -> None:
    doc_id = await _project(db, {})
    read = await PgFirstJoinReader(db).read_first_join(doc_id, "owner")
    assert read.members == {"owner": True}
    assert read.updates == []


async def test_a_non_member_or_an_unknown_project_gets_no_document(db: Database) -> None:
    doc_id = await _project(db, {"ed": Role.EDITOR})
    await PgDocumentStore(db).append(doc_id, _edits(2))
    reader = PgFirstJoinReader(db)
    outsider = await reader.read_first_join(doc_id, "mallory")
    assert outsider.members == {"owner": True, "ed": True}
    assert outsider.updates is None
    unknown = await reader.read_first_join(str(uuid.uuid4()), "owner")
    assert unknown.members == {} and unknown.updates is None


async def test_a_list_too_long_to_keep_is_none_and_membership_still_counts(
    db: Database,
) -> None:
    doc_id = await _project(db, {"ed": Role.EDITOR, "ann": Role.VIEWER})
    reader = PgFirstJoinReader(db, members_kept_max=2)
    member = await reader.read_first_join(doc_id, "ann")
    outsider = await reader.read_first_join(doc_id, "mallory")
    assert member.members is None and member.updates == []
    assert outsider.members is None and outsider.updates is None


async def test_the_document_is_not_scanned_for_a_non_member(db: Database) -> None:
    doc_id = await _project(db, {})
    await PgDocumentStore(db).append(doc_id, _edits(50))
    async with db.connection() as conn:
        plan = await conn.fetchval(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {persistence.first_join._READ}",
            uuid.UUID(doc_id),
            "mallory",
            10,
        )
    scans: list[tuple[str, object]] = []

    def walk(node: dict[str, object]) -> None:
        if node.get("Relation Name") in ("doc_states", "doc_updates"):
            scans.append((str(node["Relation Name"]), node.get("Actual Loops")))
        for child in node.get("Plans", []):  # type: ignore[attr-defined]
            walk(child)

    walk(json.loads(plan)[0]["Plan"])
    assert {name for name, _ in scans} == {"doc_states", "doc_updates"}
    assert all(loops == 0 for _, loops in scans), scans  # guarded, never executed
