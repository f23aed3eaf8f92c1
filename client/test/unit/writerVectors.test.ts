import assert from 'node:assert/strict'
import { test } from 'node:test'

import * as Y from 'yjs'

import * as tl from '../../src/index.js'
import { readVectors } from './vectors.js'

interface Step {
  edit: string
  args: Record<string, any>
  outcome: string
  timeline?: unknown
}

/** The edit of a vector step, with the TS writer of the same name (arguments unchecked on
 * purpose: the vectors hold wrong types too). */
function apply (doc: Y.Doc, edit: string, a: Record<string, any>): void {
  const calls: Record<string, () => unknown> = {
    init_project: () => tl.initProject(doc, a as tl.ProjectInit),
    set_project_fields: () => tl.setProjectFields(doc, a['fields']),
    set_title: () => tl.setTitle(doc, a['title']),
    add_track: () => tl.addTrack(doc, a as tl.NewTrack),
    move_track: () => tl.moveTrack(doc, a['track'], a['after']),
    rename_track: () => tl.renameTrack(doc, a['track'], a['name']),
    set_track_flags: () => tl.setTrackFlags(doc, a['track'], a['flags']),
    delete_track: () => tl.deleteTrack(doc, a['track']),
    add_asset: () => tl.addAsset(doc, a as tl.NewAsset),
    delete_asset: () => tl.deleteAsset(doc, a['asset'], a['cascade'] === undefined ? {} : { cascade: a['cascade'] }),
    add_clip: () => tl.addClip(doc, a as tl.NewClip),
    move_clip: () => tl.moveClip(doc, a['clip'], a['to']),
    trim_clip: () => tl.trimClip(doc, a['clip'], a['timing']),
    set_clip_text: () => tl.setClipText(doc, a['clip'], a['text']),
    set_clip_volume: () => tl.setClipVolume(doc, a['clip'], a['volume']),
    delete_clip: () => tl.deleteClip(doc, a['clip']),
    raw_set: () => doc.getMap(a['root']).set(a['key'], a['value'])
  }
  const call = calls[edit]
  if (call === undefined) throw new Error(`no TS writer for ${edit}`)
  call()
}

/** JSON numbers as both sides mean them (Python writes 25.0 where JS writes 25). */
const normalised = (value: unknown): unknown => JSON.parse(JSON.stringify(value))

test('the TS writers accept and refuse exactly what the server writers do, with the same result', () => {
  const { steps } = readVectors<{ steps: Step[] }>('timeline_writers.json')
  assert.ok(steps.length > 70)
  const doc = new Y.Doc()
  let previous = normalised(tl.readTimeline(doc))
  for (const [index, step] of steps.entries()) {
    const label = `step ${index}: ${step.edit} ${JSON.stringify(step.args)}`
    const before = Y.encodeStateAsUpdate(doc)
    let outcome = 'ok'
    try {
      apply(doc, step.edit, step.args)
    } catch (error) {
      if (!(error instanceof tl.TimelineError)) throw error
      outcome = error.name
    }
    assert.equal(outcome, step.outcome, label)
    const now = normalised(tl.readTimeline(doc))
    if (outcome === 'ok') {
      assert.deepEqual(now, normalised(step.timeline), label)
    } else {
      assert.deepEqual(Y.encodeStateAsUpdate(doc), before, `${label} wrote to the document`)
      assert.deepEqual(now, previous, label)
    }
    previous = now
  }
})
