/** Random documents with timeline-shaped and other content, for the reader's fuzz and parity tests. */

import * as Y from 'yjs'

import { ASSET_KINDS, CLIP_KINDS, TRACK_KINDS } from '../../src/index.js'
import { pick, seeded } from './random.js'

const FIELD_NAMES = ['kind', 'name', 'order', 'muted', 'locked', 'track', 'asset', 'start_ms', 'duration_ms',
  'source_in_ms', 'volume', 'text', 'uri', 'origin', 'title', 'fps', 'width', 'height', 'thumbnail_asset']
const IDS = ['a', 'b', 'c', 't1', 't2', 'x', '', 'é', '\u{1F600}']

function randomPrimitive (random: () => number): unknown {
  return pick(random, [
    () => Math.floor(random() * 5000) - 100, () => random() * 10, () => Number.NaN, () => Infinity,
    () => -0, () => 2 ** 60, () => true, () => false, () => null, () => pick(random, IDS),
    () => pick(random, [...TRACK_KINDS, ...CLIP_KINDS, ...ASSET_KINDS]), () => 'x'.repeat(100),
    () => [1, 'two'], () => ({ nested: true }), () => new Uint8Array([1, 2]), () => BigInt(12345)
  ])()
}

function randomValue (random: () => number, depth: number): unknown {
  const roll = random()
  if (depth > 0 && roll < 0.45) {
    const map = new Y.Map<unknown>()
    const fields = Math.floor(random() * 8)
    for (let i = 0; i < fields; i += 1) map.set(pick(random, FIELD_NAMES), randomValue(random, depth - 1))
    return map
  }
  if (depth > 0 && roll < 0.5) return Y.Array.from([1, 2])
  if (depth > 0 && roll < 0.55) return new Y.Text('text')
  return randomPrimitive(random)
}

/** A document with random content, some of it timeline-shaped, some not. */
export function corruptDoc (seed: number): Y.Doc {
  const random = seeded(seed)
  const doc = new Y.Doc()
  for (const root of ['project', 'tracks', 'clips', 'assets']) {
    const shape = random()
    if (shape < 0.08) {
      doc.getArray(root).push(['junk'])
    } else if (shape < 0.12) {
      doc.getText(root).insert(0, 'junk')
    } else if (root === 'project') {
      const map = doc.getMap(root)
      for (let i = 0; i < 5; i += 1) map.set(pick(random, FIELD_NAMES), randomValue(random, 1))
    } else {
      const map = doc.getMap(root)
      const entries = Math.floor(random() * 8)
      for (let i = 0; i < entries; i += 1) map.set(pick(random, IDS), randomValue(random, 2))
    }
  }
  return doc
}

