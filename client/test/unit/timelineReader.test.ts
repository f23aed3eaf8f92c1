import assert from 'node:assert/strict'
import { test } from 'node:test'

import * as Y from 'yjs'

import {
  ASSET_KINDS, CLIP_KINDS, TRACK_KINDS, TimelineError, addClip, addTrack, deleteAsset, deleteTrack,
  moveClip, readTimeline, trimClip, type Timeline
} from '../../src/index.js'
import { corruptDoc } from './corrupt.js'

/** Everything the reader promises about its output, whatever the document held. */
function checkConsistent (timeline: Timeline): void {
  const trackIds = new Set(timeline.tracks.map((t) => t.id))
  const assetIds = new Set(timeline.assets.map((a) => a.id))
  for (const track of timeline.tracks) {
    assert.ok(TRACK_KINDS.includes(track.kind))
    assert.equal(typeof track.name, 'string')
    assert.equal(typeof track.order, 'string')
    assert.equal(typeof track.muted, 'boolean')
  }
  for (const clip of timeline.clips) {
    assert.ok(trackIds.has(clip.track))
    assert.ok(CLIP_KINDS.includes(clip.kind))
    assert.ok(Number.isSafeInteger(clip.start_ms) && clip.start_ms >= 0)
    assert.ok(Number.isSafeInteger(clip.duration_ms) && clip.duration_ms >= 1)
    assert.ok(Number.isSafeInteger(clip.source_in_ms) && clip.source_in_ms >= 0)
    assert.ok(Number.isFinite(clip.volume) && clip.volume >= 0)
    assert.ok(clip.asset === null || assetIds.has(clip.asset))
    assert.ok(clip.text === null || typeof clip.text === 'string')
  }
  for (const asset of timeline.assets) {
    assert.ok(ASSET_KINDS.includes(asset.kind))
    assert.ok(typeof asset.uri === 'string' && asset.uri !== '')
    assert.ok(asset.duration_ms === null || (Number.isSafeInteger(asset.duration_ms) && asset.duration_ms >= 1))
  }
  const p = timeline.project
  assert.ok(Number.isFinite(p.fps) && p.fps > 0)
  assert.ok(Number.isSafeInteger(p.width) && p.width >= 1 && Number.isSafeInteger(p.height) && p.height >= 1)
  assert.ok(p.thumbnail_asset === null || assetIds.has(p.thumbnail_asset))
  JSON.stringify(timeline)
}

test('an empty document reads as an empty timeline without problems', () => {
  assert.deepEqual(readTimeline(new Y.Doc()), {
    project: { title: '', fps: 30, width: 1920, height: 1080, thumbnail_asset: null },
    tracks: [], clips: [], assets: [], problems: []
  })
})

test('malformed entries are skipped or defaulted and reported with the server wording', () => {
  const doc = new Y.Doc()
  addTrack(doc, { kind: 'video', name: 'V', id: 't' })
  const clips = doc.getMap('clips')
  clips.set('s', 'a string')
  clips.set('neg', new Y.Map<unknown>([['track', 't'], ['kind', 'video'], ['start_ms', -5], ['duration_ms', 10]]))
  clips.set('vol', new Y.Map<unknown>([['track', 't'], ['kind', 'video'], ['start_ms', 0], ['duration_ms', 10], ['volume', Number.NaN]]))
  clips.set('orphan', new Y.Map<unknown>([['track', 'gone'], ['kind', 'video'], ['start_ms', 0], ['duration_ms', 10]]))
  doc.getMap('project').set('fps', 'fast')
  const timeline = readTimeline(doc)
  assert.deepEqual(timeline.problems, [
    { path: 'clips/neg/start_ms', message: 'expected an integer >= 0, got -5.0; clip skipped' },
    { path: 'clips/orphan/track', message: "unknown track 'gone'; clip skipped" },
    { path: 'clips/s', message: "expected a map, got 'a string'; clip skipped" },
    { path: 'clips/vol/volume', message: 'expected a number >= 0, got nan; using 1.0' },
    { path: 'project/fps', message: "expected a number > 0, got 'fast'; using 30.0" }
  ])
  assert.deepEqual(timeline.clips.map((c) => [c.id, c.volume]), [['vol', 1]])
})

test('the reader never throws on random corrupt documents, and its output keeps its promises', () => {
  const cases = 400
  for (let seed = 1; seed <= cases; seed += 1) {
    const doc = corruptDoc(seed)
    const direct = readTimeline(doc)
    checkConsistent(direct)
    // The same content as another replica receives it: roots arrive without a type.
    const replica = new Y.Doc()
    Y.applyUpdate(replica, Y.encodeStateAsUpdate(doc))
    checkConsistent(readTimeline(replica))
  }
})

test('writers on corrupt documents either succeed or throw a TimelineError', () => {
  for (let seed = 1; seed <= 200; seed += 1) {
    const doc = corruptDoc(seed)
    const edits = [
      () => addTrack(doc, { kind: 'video', name: 'V', after: 'a' }),
      () => addClip(doc, { track: 'a', kind: 'video', start_ms: 0, duration_ms: 5, asset: 'b' }),
      () => moveClip(doc, 'c', { start_ms: 5, track: 't1' }),
      () => trimClip(doc, 'x', { duration_ms: 9 }),
      () => deleteTrack(doc, 't2'),
      () => deleteAsset(doc, 'b', { cascade: seed % 2 === 0 })
    ]
    for (const edit of edits) {
      try {
        edit()
      } catch (error) {
        assert.ok(error instanceof TimelineError, `seed ${seed}: ${String(error)}`)
      }
    }
    checkConsistent(readTimeline(doc))
  }
})
