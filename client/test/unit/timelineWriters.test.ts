import assert from 'node:assert/strict'
import { test } from 'node:test'

import * as Y from 'yjs'

import {
  AssetInUseError, DuplicateIdError, InvalidValueError, MalformedDocumentError, TimelineError,
  UnknownAssetError, UnknownClipError, UnknownTrackError, addAsset, addClip, addTrack, deleteAsset,
  deleteClip, deleteTrack, initProject, moveClip, moveTrack, readTimeline, renameTrack,
  setClipText, setClipVolume, setProjectFields, setTitle, setTrackFlags, trimClip
} from '../../src/index.js'

function project (): Y.Doc {
  const doc = new Y.Doc()
  initProject(doc, { title: 'Film' })
  addTrack(doc, { kind: 'video', name: 'V1', id: 't1' })
  addTrack(doc, { kind: 'audio', name: 'A1', id: 't2' })
  addAsset(doc, { kind: 'video', name: 'take', uri: 's3://b/take.mp4', duration_ms: 10000, id: 'a1' })
  addClip(doc, { track: 't1', kind: 'video', start_ms: 0, duration_ms: 4000, asset: 'a1', id: 'c1' })
  return doc
}

/** Runs `edit`, which must throw `expected`, and checks that the document did not change. */
function refuses (doc: Y.Doc, edit: () => unknown, expected: new (...args: never[]) => TimelineError): void {
  const before = Y.encodeStateAsUpdate(doc)
  let updates = 0
  const count = (): void => { updates += 1 }
  doc.on('update', count)
  try {
    assert.throws(edit, expected)
  } finally {
    doc.off('update', count)
  }
  assert.equal(updates, 0, 'a refused edit wrote an update')
  assert.deepEqual(Y.encodeStateAsUpdate(doc), before)
}

test('the writers build a timeline the reader reads back without problems', () => {
  const doc = project()
  addTrack(doc, { kind: 'subtitle', name: 'S', id: 't0', after: 't1' })
  addClip(doc, { track: 't0', kind: 'subtitle', start_ms: 500, duration_ms: 1000, text: 'Hi', id: 'c2' })
  moveClip(doc, 'c1', { start_ms: 250, track: 't2' })
  trimClip(doc, 'c1', { duration_ms: 3000, source_in_ms: 100 })
  setClipVolume(doc, 'c1', 0.5)
  setClipText(doc, 'c2', 'Hello')
  renameTrack(doc, 't2', 'Music')
  setTrackFlags(doc, 't2', { muted: true })
  moveTrack(doc, 't2', null)
  setTitle(doc, 'Film 2')
  setProjectFields(doc, { thumbnail_asset: 'a1', fps: 25 })
  const timeline = readTimeline(doc)
  assert.deepEqual(timeline.problems, [])
  assert.deepEqual(timeline.tracks.map((t) => t.id), ['t2', 't1', 't0'])
  assert.deepEqual(timeline.project, { title: 'Film 2', fps: 25, width: 1920, height: 1080, thumbnail_asset: 'a1' })
  assert.deepEqual(timeline.clips.find((c) => c.id === 'c1'), {
    id: 'c1', track: 't2', kind: 'video', asset: 'a1', start_ms: 250, duration_ms: 3000, source_in_ms: 100, volume: 0.5, text: null
  })
  deleteAsset(doc, 'a1', { cascade: true })
  deleteTrack(doc, 't0')
  const after = readTimeline(doc)
  assert.deepEqual(after.clips, [])
  assert.equal(after.project.thumbnail_asset, null)
  assert.deepEqual(after.tracks.map((t) => t.id), ['t2', 't1'])
})

test('each writer is one transaction: one update per call', () => {
  const doc = project()
  let updates = 0
  doc.on('update', () => { updates += 1 })
  moveClip(doc, 'c1', { start_ms: 10, track: 't2' })
  deleteAsset(doc, 'a1', { cascade: true })
  addTrack(doc, { kind: 'overlay', name: 'O', after: 't1' })
  assert.equal(updates, 3)
})

test('invalid arguments are refused without writing anything', () => {
  const doc = project()
  const anyDoc = doc as Y.Doc
  const loose = <T>(value: unknown): T => value as T
  refuses(doc, () => addClip(doc, { track: 't1', kind: 'video', start_ms: -1, duration_ms: 10 }), InvalidValueError)
  refuses(doc, () => addClip(doc, { track: 't1', kind: 'video', start_ms: 0, duration_ms: 0 }), InvalidValueError)
  refuses(doc, () => addClip(doc, { track: 't1', kind: 'video', start_ms: 1.5, duration_ms: 10 }), InvalidValueError)
  refuses(doc, () => addClip(doc, { track: 't1', kind: 'video', start_ms: 2 ** 53, duration_ms: 10 }), InvalidValueError)
  refuses(doc, () => addClip(doc, { track: 't1', kind: loose('film'), start_ms: 0, duration_ms: 10 }), InvalidValueError)
  refuses(doc, () => addClip(doc, { track: 't1', kind: 'video', start_ms: 0, duration_ms: 10, volume: -0.1 }), InvalidValueError)
  refuses(doc, () => addClip(doc, { track: 't1', kind: 'video', start_ms: 0, duration_ms: 10, volume: Number.NaN }), InvalidValueError)
  refuses(doc, () => addClip(doc, { track: 'nope', kind: 'video', start_ms: 0, duration_ms: 10 }), UnknownTrackError)
  refuses(doc, () => addClip(doc, { track: 't1', kind: 'video', start_ms: 0, duration_ms: 10, asset: 'nope' }), UnknownAssetError)
  refuses(doc, () => addClip(doc, { track: 't1', kind: 'video', start_ms: 0, duration_ms: 10, id: 'c1' }), DuplicateIdError)
  refuses(doc, () => addClip(doc, { track: '', kind: 'video', start_ms: 0, duration_ms: 10 }), InvalidValueError)
  refuses(doc, () => addTrack(doc, { kind: loose('music'), name: 'x' }), InvalidValueError)
  refuses(doc, () => addTrack(doc, { kind: 'video', name: loose(5) }), InvalidValueError)
  refuses(doc, () => addTrack(doc, { kind: 'video', name: 'x', id: 't1' }), DuplicateIdError)
  refuses(doc, () => addTrack(doc, { kind: 'video', name: 'x', after: 'nope' }), UnknownTrackError)
  refuses(doc, () => addAsset(doc, { kind: 'video', name: 'x', uri: '' }), InvalidValueError)
  refuses(doc, () => addAsset(doc, { kind: 'video', name: 'x', uri: 'u', duration_ms: 0 }), InvalidValueError)
  refuses(doc, () => moveClip(doc, 'c1', { start_ms: -5 }), InvalidValueError)
  refuses(doc, () => moveClip(doc, 'c1', { start_ms: 5, track: 'nope' }), UnknownTrackError)
  refuses(doc, () => moveClip(doc, 'nope', { start_ms: 5, track: 't2' }), UnknownClipError)
  refuses(doc, () => trimClip(doc, 'c1', { start_ms: 5, duration_ms: -1 }), InvalidValueError)
  refuses(doc, () => trimClip(doc, 'nope', { start_ms: 5 }), UnknownClipError)
  refuses(doc, () => setClipVolume(doc, 'c1', Infinity), InvalidValueError)
  refuses(doc, () => setClipText(doc, 'c1', loose(3)), InvalidValueError)
  refuses(doc, () => renameTrack(doc, 'nope', 'x'), UnknownTrackError)
  refuses(doc, () => setTrackFlags(doc, 't1', { muted: loose('yes') }), InvalidValueError)
  refuses(doc, () => moveTrack(doc, 't1', 'nope'), UnknownTrackError)
  refuses(doc, () => deleteTrack(doc, 'nope'), UnknownTrackError)
  refuses(doc, () => deleteClip(doc, 'nope'), UnknownClipError)
  refuses(doc, () => deleteClip(doc, loose(null)), InvalidValueError)
  refuses(doc, () => deleteAsset(doc, 'a1'), AssetInUseError)
  refuses(doc, () => deleteAsset(doc, 'nope'), UnknownAssetError)
  refuses(doc, () => setProjectFields(doc, { fps: 0 }), InvalidValueError)
  refuses(doc, () => setProjectFields(doc, { title: 'ok', width: 0 }), InvalidValueError)
  refuses(doc, () => setProjectFields(doc, loose({ colour: 'red' })), InvalidValueError)
  refuses(doc, () => setProjectFields(doc, { title: 'ok', thumbnail_asset: 'nope' }), UnknownAssetError)
  refuses(anyDoc, () => initProject(anyDoc, { title: loose(7) }), InvalidValueError)
})

test('content in the wrong shape is refused as malformed, and can still be deleted', () => {
  const doc = project()
  doc.getMap('clips').set('bad', 'not a map')
  refuses(doc, () => trimClip(doc, 'bad', { start_ms: 1 }), MalformedDocumentError)
  deleteClip(doc, 'bad')
  assert.equal(doc.getMap('clips').has('bad'), false)
  const other = new Y.Doc()
  other.getArray('tracks').push(['x'])
  refuses(other, () => addTrack(other, { kind: 'video', name: 'V' }), MalformedDocumentError)
})

test('tracks that tie on order are renumbered on the next insert between them', () => {
  const doc = new Y.Doc()
  addTrack(doc, { kind: 'video', name: 'A', id: 'a' })
  addTrack(doc, { kind: 'video', name: 'B', id: 'b' })
  const b = doc.getMap('tracks').get('b') as Y.Map<unknown>
  b.set('order', (doc.getMap('tracks').get('a') as Y.Map<unknown>).get('order'))
  addTrack(doc, { kind: 'video', name: 'C', id: 'c', after: 'a' })
  const timeline = readTimeline(doc)
  assert.deepEqual(timeline.tracks.map((t) => t.id), ['a', 'c', 'b'])
  assert.equal(new Set(timeline.tracks.map((t) => t.order)).size, 3)
})
