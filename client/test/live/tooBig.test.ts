import assert from 'node:assert/strict'
import { test } from 'node:test'

import { connect, setTitle } from '../../src/index.js'
import { mintToken, projectId, recordingSocket, sleep, waitFor, writeResult, wsUrl } from './harness.js'

// The server runs with a small message_bytes_max (64 KiB).

test('4413 (message too big) stops for good with status denied', async () => {
  const { Socket, urls } = recordingSocket()
  const conn = connect({
    url: wsUrl(), projectId: projectId(), getToken: () => mintToken('alice'), WebSocketPolyfill: Socket,
    disableBc: true, backoff: { initialMs: 20, maxMs: 50 }
  })
  try {
    await conn.whenSynced()
    setTitle(conn.doc, 'x'.repeat(200 * 1024))
    await waitFor('the 4413 close', () => conn.status === 'denied')
    assert.equal(conn.lastClose?.code, 4413)
    await sleep(1500)
    assert.equal(urls.length, 1, 'no retry after 4413')
    writeResult({ attempts: urls.length })
  } finally {
    conn.destroy()
  }
})
