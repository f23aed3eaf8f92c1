import assert from 'node:assert/strict'
import { test } from 'node:test'

import { addTrack, connect, readTimeline } from '../../src/index.js'
import { mintToken, projectId, recordingSocket, sleep, tokenOf, waitFor, writeResult, wsUrl } from './harness.js'

// The server runs with jwt_leeway_s=0, so a token is refused as soon as its exp has passed.

test('after a 4401 a new token is fetched and the connection resumes with it, edits intact', async () => {
  const tokens: string[] = []
  const getToken = async (): Promise<string> => {
    // The first token lives one second; later ones an hour.
    const token = mintToken('alice', tokens.length === 0 ? 1 : 3600)
    tokens.push(token)
    return token
  }
  const { Socket, urls } = recordingSocket()
  const alice = connect({ url: wsUrl(), projectId: projectId(), getToken, WebSocketPolyfill: Socket, disableBc: true })
  const bob = connect({
    url: wsUrl(), projectId: projectId(), getToken: () => mintToken('bob'), WebSocketPolyfill: recordingSocket().Socket, disableBc: true
  })
  const closes: number[] = []
  alice.on('close', ({ code }) => closes.push(code))
  try {
    await Promise.all([alice.whenSynced(), bob.whenSynced()])
    assert.equal(tokens.length, 1)
    await sleep(2100) // the first token expires (exp has a one-second resolution)
    // The network drops; an edit is made while the client is offline, so it is not yet sent.
    alice.provider.ws?.close()
    addTrack(alice.doc, { kind: 'video', name: 'Made offline', id: 'offline' })
    await waitFor('bob to receive the offline edit', () => readTimeline(bob.doc).tracks.some((t) => t.id === 'offline'))
    await waitFor('alice synced again', () => alice.status === 'synced')
    assert.ok(closes.includes(4401), `closes: ${closes.join(', ')}`)
    assert.equal(tokens.length, 2, 'getToken is called again after the 4401, once')
    const [first, second] = tokens
    assert.notEqual(first, second)
    // The retry after the drop still carried the first token (it was the current one) and got
    // 4401; every socket after that carried the new token.
    const stale = urls.findIndex((url, i) => i > 0 && tokenOf(url) === first)
    assert.ok(stale > 0, 'the expired token was tried once after the drop')
    assert.ok(urls.slice(stale + 1).length > 0)
    assert.ok(urls.slice(stale + 1).every((url) => tokenOf(url) === second), urls.join('\n'))
    assert.equal(alice.attempts, urls.length)
    writeResult({ attempts: urls.length, getTokenCalls: tokens.length, closes })
  } finally {
    alice.destroy()
    bob.destroy()
  }
})

test('a token source that keeps giving refused tokens ends in unauthenticated, bounded', async () => {
  let calls = 0
  const { Socket, urls } = recordingSocket()
  const conn = connect({
    url: wsUrl(),
    projectId: projectId(),
    getToken: () => { calls += 1; return 'not-a-token' },
    WebSocketPolyfill: Socket,
    disableBc: true,
    tokenRefreshesMax: 2,
    backoff: { initialMs: 20, maxMs: 40 }
  })
  try {
    await assert.rejects(conn.whenSynced())
    assert.equal(conn.status, 'unauthenticated')
    assert.equal(conn.lastClose?.code, 4401)
    await sleep(500)
    assert.equal(calls, 3, 'the first token and two refreshes')
    assert.equal(urls.length, 3)
  } finally {
    conn.destroy()
  }
})

test('getToken failing ends in unauthenticated without opening a socket', async () => {
  const { Socket, urls } = recordingSocket()
  const conn = connect({
    url: wsUrl(), projectId: projectId(), getToken: async () => { throw new Error('signed out') }, WebSocketPolyfill: Socket, disableBc: true
  })
  const errors: unknown[] = []
  conn.on('tokenError', (error) => errors.push(error))
  try {
    await assert.rejects(conn.whenSynced())
    assert.equal(conn.status, 'unauthenticated')
    assert.equal(urls.length, 0)
    assert.equal(errors.length, 1)
  } finally {
    conn.destroy()
  }
})
