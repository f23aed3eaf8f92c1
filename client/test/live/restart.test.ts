import assert from 'node:assert/strict'
import { test } from 'node:test'

import { type ConnectionStatus, addTrack, connect } from '../../src/index.js'
import { mintToken, projectId, recordingSocket, waitFor, writeResult, wsUrl } from './harness.js'

// Run directly (`node restart.test.js`, not `node --test`) so that "[sdk] synced" reaches the
// driver at once; the driver then restarts the server on the same port (1012).

test('1012 (server restarting) backs off and resumes on the new server, edits intact', async () => {
  const { Socket, urls } = recordingSocket()
  const conn = connect({ url: wsUrl(), projectId: projectId(), getToken: () => mintToken('alice'), WebSocketPolyfill: Socket, disableBc: true })
  const statuses: ConnectionStatus[] = []
  conn.on('status', (status) => statuses.push(status))
  try {
    await conn.whenSynced()
    process.stderr.write('[sdk] synced\n')
    await waitFor('the restart close', () => conn.lastClose !== null, 30000)
    assert.equal(conn.lastClose?.code, 1012)
    addTrack(conn.doc, { kind: 'video', name: 'During the restart', id: 'restart' })
    await waitFor('synced on the new server', () => conn.status === 'synced', 30000)
    assert.ok(statuses.includes('offline'))
    writeResult({ attemptsUntilResumed: urls.length, statuses })
  } finally {
    conn.destroy()
  }
})
