import assert from 'node:assert/strict'
import { test } from 'node:test'

import * as Y from 'yjs'

import { addTrack, connect, deleteTrack, readTimeline, renameTrack } from '../../src/index.js'
import { mintToken, projectId, recordingSocket, waitFor, writeResult, wsUrl } from './harness.js'

// The server runs with group_commit_ms=300: an update reaches other clients at once and is
// stored (and acknowledged to its author) 300 ms later.

test('unsavedChanges turns false only after the server acknowledged the edit as stored', async () => {
  const errors: unknown[] = []
  const consoleError = console.error
  console.error = (...args: unknown[]) => { errors.push(args); consoleError(...args) }
  const alice = connect({
    url: wsUrl(), projectId: projectId(), getToken: () => mintToken('alice'), WebSocketPolyfill: recordingSocket().Socket, disableBc: true, saved: true
  })
  const bob = connect({
    url: wsUrl(), projectId: projectId(), getToken: () => mintToken('bob'), WebSocketPolyfill: recordingSocket().Socket, disableBc: true
  })
  const ownClock = (): number => Y.encodeStateVector(alice.doc).length > 0 ? (Y.decodeStateVector(Y.encodeStateVector(alice.doc)).get(alice.doc.clientID) ?? 0) : 0
  const clearedAt: Array<{ durable: number, own: number }> = []
  alice.on('unsavedChanges', (unsaved) => {
    if (!unsaved) clearedAt.push({ durable: alice.savedStateVector?.get(alice.doc.clientID) ?? -1, own: ownClock() })
  })
  let savedMessages = 0
  alice.on('saved', () => { savedMessages += 1 })
  try {
    await Promise.all([alice.whenSynced(), bob.whenSynced()])
    assert.equal(alice.unsavedChanges, false)

    // Bob receives the edit before it is stored: alice must still show unsaved changes then.
    let unsavedWhenBobSawIt: boolean | null = null
    bob.doc.on('update', () => { unsavedWhenBobSawIt ??= alice.unsavedChanges })
    addTrack(alice.doc, { kind: 'video', name: 'V', id: 't1' })
    assert.equal(alice.unsavedChanges, true)
    await waitFor('bob to receive the track', () => readTimeline(bob.doc).tracks.length === 1)
    assert.equal(unsavedWhenBobSawIt, true)
    await waitFor('the ack', () => !alice.unsavedChanges)
    assert.ok(savedMessages >= 1)
    assert.equal(clearedAt.length, 1)
    const [cleared] = clearedAt
    assert.ok(cleared !== undefined && cleared.durable >= cleared.own && cleared.own > 0, JSON.stringify(clearedAt))

    // A delete-only edit cannot be shown by a state vector: it stays unsaved after its own ack,
    // until a later insert of this client is stored.
    renameTrack(alice.doc, 't1', 'renamed')
    await waitFor('the rename ack', () => !alice.unsavedChanges)
    const savedBefore = savedMessages
    deleteTrack(alice.doc, 't1')
    assert.equal(alice.unsavedChanges, true)
    await waitFor('the commit of the delete', () => savedMessages > savedBefore)
    assert.equal(alice.unsavedChanges, true)
    addTrack(alice.doc, { kind: 'audio', name: 'A', id: 't2' })
    await waitFor('the ack after the insert', () => !alice.unsavedChanges)
    assert.deepEqual(errors, [], 'the saved message must be handled (no "Unable to compute message")')
    writeResult({ savedMessages })
  } finally {
    console.error = consoleError
    alice.destroy()
    bob.destroy()
  }
})
