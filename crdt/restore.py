"""Restore a saved version into the live document as one ordinary edit (pure, no I/O).

A restore never swaps the document: collaborators' clients would merge their copy of the old
content straight back in. Instead ``restore_to`` diffs the live content against the version's
and writes the difference in one transaction, so the restore reaches every client as a normal
update and can itself be undone by restoring the state saved just before it.

The diff is structural so that concurrent work survives:

- a key only in the live map is deleted, a key only in the version is inserted (a deep copy);
- where both hold a nested ``Map``, the maps are compared field by field: changed fields are
  set, removed ones deleted, and equal ones left alone, so a collaborator's concurrent edit of
  a field the restore does not change is kept;
- any other value is replaced only if it differs. Numbers compare by value (JS numbers arrive
  as floats, ``1000.0 == 1000``) but a boolean never equals a number, and a shared type never
  equals a plain value (a ``Map`` is not a ``dict``, a ``Text`` is not a ``str``). Differing
  ``Array`` and ``Text`` values are replaced whole (a text's formatting and embeds count as
  content and are copied).

Which roots are restored: the four timeline roots always, viewed as maps. Other roots are
restored as maps too unless either document knows them as another type (``Array``, ``Text``,
XML), in which case they are left alone. A root that arrived only through an update has no
type yet; viewing it as a map shows only its keyed entries, while array, text and XML content
lives in the sequence part of a root, which that view neither sees nor touches. So a sequence
root is never damaged, but its content is not restored either: the timeline keeps everything
in maps. (Afterwards ``live.items()`` reports such a root as a ``Map``; ``get`` with another
type still works.)

Values that cannot be copied are left as they are in the live document: XML types and
subdocuments inside maps (the timeline uses neither), and values pycrdt cannot convert.
"""

from __future__ import annotations

import math
from typing import Any, Final

from pycrdt import Array, Doc, Map, Text

from crdt.protocol import EMPTY_UPDATE
from crdt.timeline import ROOTS

__all__ = ["RESTORE_ORIGIN", "restore_to", "restore_update"]

RESTORE_ORIGIN: Final = "restore"

# What pycrdt raises when it cannot convert stored content to Python (as in ``crdt.timeline``).
_CONVERSION_ERRORS: Final = (RuntimeError, TypeError, ValueError, KeyError)


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_ABSENT: Final = _Sentinel("<absent>")
_UNREADABLE: Final = _Sentinel("<unreadable>")


def restore_update(live: Doc[Any], target_state: bytes) -> bytes:
    """Restore ``live`` to a stored version state (a Yjs v1 update) and return the update the
    restore produced, to broadcast and persist; ``EMPTY_UPDATE`` if nothing had to change.

    Raises ``ValueError`` if ``target_state`` does not decode. May run inside a transaction
    on ``live`` whose origin is ``RESTORE_ORIGIN`` (or has none).
    """
    target: Doc[Any] = Doc()
    target.apply_update(target_state)
    before = live.get_state()
    if not _restore(live, target):
        # A diff against ``before`` is never empty once the document has deletions (it
        # carries the whole delete set), so "nothing changed" has to come from the restore.
        return EMPTY_UPDATE
    return live.get_update(before)


def restore_to(live: Doc[Any], target: Doc[Any]) -> None:
    """Change ``live`` so its content equals ``target``'s, in one transaction with origin
    ``RESTORE_ORIGIN``. ``target`` is only read (its roots may get typed as maps)."""
    _restore(live, target)


def _restore(live: Doc[Any], target: Doc[Any]) -> bool:
    with live.transaction(origin=RESTORE_ORIGIN), target.transaction():
        live_roots = _root_kinds(live)
        target_roots = _root_kinds(target)
        changed = False
        for name in sorted(live_roots.keys() | target_roots.keys() | set(ROOTS)):
            if name not in live_roots and name not in target_roots:
                continue  # a timeline root neither document has: nothing to create
            if name not in ROOTS and not (
                live_roots.get(name, True) and target_roots.get(name, True)
            ):
                continue  # known to be an Array, Text or XML root somewhere: not ours to diff
            # ``get`` creates the root when missing, which writes nothing to the update.
            source = target.get(name, type=Map) if name in target_roots else None
            changed = _sync_map(live.get(name, type=Map), source) or changed
        return changed


def _root_kinds(doc: Doc[Any]) -> dict[str, bool]:
    """Root name -> whether it may be viewed as a map (untyped, or typed as a ``Map``)."""
    return {name: value is None or isinstance(value, Map) for name, value in doc.items()}


def _entries(source: Map[Any] | None) -> dict[str, Any]:
    """A map's values, with ``_UNREADABLE`` for one pycrdt cannot convert."""
    if source is None:
        return {}
    entries: dict[str, Any] = {}
    for key in list(source.keys()):
        try:
            entries[key] = source[key]
        except _CONVERSION_ERRORS:
            entries[key] = _UNREADABLE
    return entries


def _sync_map(live: Map[Any], target: Map[Any] | None) -> bool:
    """Make ``live`` hold what ``target`` holds, touching only what differs."""
    have = _entries(live)
    want = _entries(target)
    changed = False
    # Sorted so the same restore always produces the same update.
    for key in sorted(have.keys() - want.keys()):
        del live[key]
        changed = True
    for key in sorted(want):
        new = want[key]
        old = have.get(key, _ABSENT)
        if new is _UNREADABLE:
            continue  # nothing to copy from; keep whatever the live document has
        if isinstance(old, Map) and isinstance(new, Map):
            changed = _sync_map(old, new) or changed
        elif old is _ABSENT or not _same(old, new):
            changed = _copy_into_map(live, key, new) or changed
    return changed


# --- Equality --------------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    """Content equality across documents: numbers by value, booleans and types strictly."""
    if a is _UNREADABLE or b is _UNREADABLE:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        # NaN equals NaN here, or restoring an unchanged document would rewrite it each time.
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, bytes | bytearray) and isinstance(b, bytes | bytearray):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Map):
        return _same(_entries(a), _entries(b))
    if isinstance(a, Array):
        return _same(_array_items(a), _array_items(b))
    if isinstance(a, Text):
        return _same(_text_delta(a), _text_delta(b))
    # Strings, None, and types restore cannot copy (compared by their serialised form).
    return bool(a == b) if isinstance(a, str) or a is None else str(a) == str(b)


def _array_items(array: Array[Any]) -> list[Any] | _Sentinel:
    try:
        return list(array)
    except _CONVERSION_ERRORS:
        return _UNREADABLE


def _text_delta(text: Text) -> list[tuple[Any, dict[str, Any] | None]] | _Sentinel:
    """The text as (insert, attributes) runs, so formatting counts as content."""
    try:
        return text.diff()
    except _CONVERSION_ERRORS:
        return _UNREADABLE


# --- Deep copy into the live document --------------------------------------------------------
#
# A shared type is inserted empty and filled once integrated: a prelim ``Text`` cannot carry
# formatting or embeds, and filling in place works the same at every depth.


def _copy_into_map(live: Map[Any], key: str, value: Any) -> bool:
    """Set ``live[key]`` to a copy of ``value``; False (live unchanged) if it cannot be copied."""
    if not _copyable(value):
        return False
    if isinstance(value, Map | Array | Text):
        live[key] = type(value)()
        _fill(live[key], value)
    else:
        live[key] = value
    return True


def _append_copy(live: Array[Any], value: Any) -> None:
    if not _copyable(value):
        return
    if isinstance(value, Map | Array | Text):
        live.append(type(value)())
        _fill(live[len(live) - 1], value)
    else:
        live.append(value)


def _copyable(value: Any) -> bool:
    if value is _UNREADABLE:
        return False
    if isinstance(value, Map | Array | Text):
        return True
    # Plain values (None, bool, numbers, strings, bytes, JSON objects and arrays) are stored
    # as they are; XML types and subdocuments are not copied.
    return not type(value).__module__.startswith("pycrdt")


def _fill(empty: Any, source: Map[Any] | Array[Any] | Text) -> None:
    """Copy ``source``'s content into ``empty``, a just-integrated shared type of its kind."""
    if isinstance(source, Map):
        for key, value in sorted(_entries(source).items()):
            _copy_into_map(empty, key, value)
    elif isinstance(source, Array):
        items = _array_items(source)
        for value in items if isinstance(items, list) else ():
            _append_copy(empty, value)
    else:
        delta = _text_delta(source)
        runs = delta if isinstance(delta, list) else []
        # Insert everything unformatted first, then format: text inserted right after a
        # formatted run would otherwise inherit its attributes. Offsets are taken from the
        # text itself, in whatever unit pycrdt indexes by.
        spans = []
        for insert, attrs in runs:
            start = len(empty)
            if isinstance(insert, str):
                empty.insert(start, insert)
            else:
                empty.insert_embed(start, insert)
            spans.append((start, len(empty), attrs))
        for start, stop, attrs in spans:
            if attrs:
                empty.format(start, stop, attrs)
