import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'

import { type ConnectionStatus, connect } from '../../src/index.js'
import { mintToken, projectId, recordingSocket, sleep, waitFor, writeResult, wsUrl } from './harness.js'

// Long enough for several retries at the fast backoff below, had the client retried.
const QUIET_MS = 1500
const FAST = { initialMs: 20, maxMs: 50 }
const attempts: Record<string, number> = {}

async function refused (label: string, user: string, project: string, status: ConnectionStatus, code: number): Promise<void> {
  const { Socket, urls } = recordingSocket()
  const conn = connect({
    url: wsUrl(), projectId: project, getToken: () => mintToken(user), WebSocketPolyfill: Socket, disableBc: true, backoff: FAST
  })
  try {
    await assert.rejects(conn.whenSynced())
    assert.equal(conn.status, status)
    assert.equal(conn.lastClose?.code, code)
    assert.notEqual(conn.lastClose?.reason, '')
    await sleep(QUIET_MS)
    assert.equal(urls.length, 1, `${label}: no retry after ${code}`)
    assert.equal(conn.status, status)
    attempts[label] = urls.length
  } finally {
    conn.destroy()
  }
}

test('4403 (not a member) stops for good with status denied', async () => {
  await refused('4403', 'mallory', projectId(), 'denied', 4403)
})

test('4404 (no such project) stops for good with status not_found', async () => {
  await refused('4404', 'alice', randomUUID(), 'not_found', 4404)
})

test('4400 (malformed message) stops for good with status denied; reconnect() resumes', async () => {
  const { Socket, urls } = recordingSocket()
  const conn = connect({
    url: wsUrl(), projectId: projectId(), getToken: () => mintToken('alice'), WebSocketPolyfill: Socket, disableBc: true, backoff: FAST
  })
  try {
    await conn.whenSynced()
    // A sync update whose payload is shorter than its declared length.
    conn.provider.ws?.send(new Uint8Array([0, 2, 5, 1]))
    await waitFor('the 4400 close', () => conn.status === 'denied')
    assert.equal(conn.lastClose?.code, 4400)
    await sleep(QUIET_MS)
    assert.equal(urls.length, 1)
    attempts['4400'] = urls.length
    conn.reconnect()
    await conn.whenSynced()
    assert.equal(urls.length, 2)
  } finally {
    conn.destroy()
  }
  writeResult(attempts)
})
