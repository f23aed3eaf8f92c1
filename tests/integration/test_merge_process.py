"""Compaction with its merge in a worker process (``persistence.merge_process``)."""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures.process import BrokenProcessPool

import pytest
from pycrdt import Doc, Map

from persistence.db import Database
from persistence.documents import PgDocumentStore
from persistence.merge_process import MergeProcess
from tests.support.pg import new_project


def _updates(count: int) -> list[bytes]:
    doc: Doc = Doc()
    doc["assets"] = assets = Map()
    updates = [doc.get_update()]
    for n in range(count):
        before = doc.get_state()
        assets[f"k{n % 7}"] = n
        updates.append(doc.get_update(before))
    return updates


def _content(parts: list[bytes]) -> dict[str, object]:
    doc: Doc = Doc()
    for part in parts:
        doc.apply_update(part)
    return dict(doc.get("assets", type=Map).to_py() or {})


async def test_compaction_merges_in_the_worker_and_survives_its_death(db: Database) -> None:
    before = set(multiprocessing.active_children())
    worker = MergeProcess()
    try:
        store = PgDocumentStore(db, merge=worker.merge)
        project = await new_project(db)
        updates = _updates(300)
        await store.append(project, updates)
        result = await store.compact(project)
        assert result.merged_rows == len(updates)
        assert len(await store.load(project)) == 1
        assert _content(list(await store.load(project))) == _content(updates)

        # The merge ran in a child process of ours; kill it.
        (child,) = set(multiprocessing.active_children()) - before
        assert child.pid is not None and child.pid != os.getpid()
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        await store.append(project, _updates(5)[1:])
        with pytest.raises(BrokenProcessPool):
            await store.compact(project)  # this one fails; nothing is deleted
        assert len(await store.load(project)) == 1 + 5

        result = await store.compact(project)  # a new worker
        assert result.merged_rows == 5
        assert len(await store.load(project)) == 1
    finally:
        worker.close()
    assert set(multiprocessing.active_children()) <= before  # closed: no worker left
