import assert from 'node:assert/strict'
import { test } from 'node:test'

import { type ConnectionStatus, addTrack, connect, readTimeline } from '../../src/index.js'
import { mintToken, projectId, recordingSocket, waitFor, writeResult, wsUrl } from './harness.js'

// The server runs with idle_timeout_s=1 and conn_messages_per_s=10 (burst 30).
const result: Record<string, unknown> = {}

test('4508 (idle) backs off and resumes', async () => {
  const { Socket, urls } = recordingSocket()
  const conn = connect({ url: wsUrl(), projectId: projectId(), getToken: () => mintToken('alice'), WebSocketPolyfill: Socket, disableBc: true })
  const statuses: ConnectionStatus[] = []
  conn.on('status', (status) => statuses.push(status))
  try {
    await conn.whenSynced()
    await waitFor('the idle close', () => conn.lastClose?.code === 4508)
    await waitFor('synced again', () => conn.status === 'synced' && urls.length >= 2)
    assert.ok(statuses.includes('offline'))
    result['4508'] = { attemptsUntilResumed: urls.length, statuses }
  } finally {
    conn.destroy()
  }
})

test('4529 (rate limited) waits as rate_limited, then resumes and delivers the edit made meanwhile', async () => {
  const { Socket, urls } = recordingSocket()
  const conn = connect({ url: wsUrl(), projectId: projectId(), getToken: () => mintToken('alice'), WebSocketPolyfill: Socket, disableBc: true })
  const bob = connect({ url: wsUrl(), projectId: projectId(), getToken: () => mintToken('bob'), WebSocketPolyfill: recordingSocket().Socket, disableBc: true })
  const statuses: ConnectionStatus[] = []
  conn.on('status', (status) => statuses.push(status))
  try {
    await Promise.all([conn.whenSynced(), bob.whenSynced()])
    const before = urls.length
    // Presence changes far faster than the limit allows.
    for (let i = 0; i < 100; i += 1) conn.awareness.setLocalStateField('playhead_ms', i)
    await waitFor('the rate-limit close', () => conn.lastClose?.code === 4529)
    addTrack(conn.doc, { kind: 'video', name: 'During the pause', id: 'paused' })
    await waitFor('bob to receive the edit', () => readTimeline(bob.doc).tracks.some((t) => t.id === 'paused'))
    await waitFor('synced again', () => conn.status === 'synced')
    assert.ok(statuses.includes('rate_limited'), statuses.join(','))
    assert.ok(urls.length > before)
    result['4529'] = { attemptsUntilResumed: urls.length - before, statuses }
  } finally {
    conn.destroy()
    bob.destroy()
  }
  writeResult(result)
})
