import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  type Connection, addAsset, addClip, addTrack, connect, moveClip, readTimeline, renameTrack, trimClip
} from '../../src/index.js'
import { mintToken, projectId, recordingSocket, waitFor, writeResult, wsUrl } from './harness.js'

function client (user: string): Connection {
  const { Socket } = recordingSocket()
  return connect({
    url: wsUrl(), projectId: projectId(), getToken: async () => mintToken(user), WebSocketPolyfill: Socket,
    disableBc: true, saved: true
  })
}

test('two SDK clients editing at once converge through the server', async () => {
  const alice = client('alice')
  const bob = client('bob')
  try {
    await Promise.all([alice.whenSynced(), bob.whenSynced()])
    const started = performance.now()
    // Concurrent edits: both add tracks at the end, then edit each other's clips.
    addTrack(alice.doc, { kind: 'video', name: 'A video', id: 'ta' })
    addTrack(bob.doc, { kind: 'audio', name: 'B audio', id: 'tb' })
    addAsset(alice.doc, { kind: 'video', name: 'take', uri: 's3://bucket/take.mp4', duration_ms: 60000, id: 'asset' })
    addClip(alice.doc, { track: 'ta', kind: 'video', start_ms: 0, duration_ms: 5000, asset: 'asset', id: 'ca' })
    addClip(bob.doc, { track: 'tb', kind: 'audio', start_ms: 1000, duration_ms: 3000, id: 'cb' })
    await waitFor('both clips on both clients', () =>
      [alice, bob].every((c) => readTimeline(c.doc).clips.length === 2))
    const firstRoundMs = performance.now() - started
    const second = performance.now()
    moveClip(bob.doc, 'ca', { start_ms: 2500 })
    trimClip(alice.doc, 'ca', { duration_ms: 4000 })
    renameTrack(alice.doc, 'tb', 'Music')
    trimClip(bob.doc, 'cb', { source_in_ms: 200 })
    const same = (): boolean => JSON.stringify(readTimeline(alice.doc)) === JSON.stringify(readTimeline(bob.doc))
    await waitFor('convergence', () => same() && readTimeline(alice.doc).clips.some((c) => c.start_ms === 2500 && c.duration_ms === 4000))
    const secondRoundMs = performance.now() - second
    const timeline = readTimeline(alice.doc)
    assert.deepEqual(timeline.problems, [])
    assert.deepEqual(timeline.clips.find((c) => c.id === 'ca'), {
      id: 'ca', track: 'ta', kind: 'video', asset: 'asset', start_ms: 2500, duration_ms: 4000, source_in_ms: 0, volume: 1, text: null
    })
    assert.equal(timeline.tracks.find((t) => t.id === 'tb')?.name, 'Music')
    await waitFor('both saved', () => !alice.unsavedChanges && !bob.unsavedChanges)
    writeResult({ firstRoundMs, secondRoundMs, timeline })
  } finally {
    alice.destroy()
    bob.destroy()
  }
})
