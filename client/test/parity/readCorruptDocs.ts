/**
 * Prints, for seeds 1..N, a random corrupt document (as a Yjs update, base64) and what
 * `readTimeline` reads from it on a fresh replica. tests/client/test_reader_parity.py reads
 * the same updates with the server's read_timeline and compares.
 *
 *     node .test-build/test/parity/readCorruptDocs.js N
 */

import * as Y from 'yjs'

import { readTimeline } from '../../src/index.js'
import { corruptDoc } from '../unit/corrupt.js'

const count = Number(process.argv[2] ?? '200')
const out = []
for (let seed = 1; seed <= count; seed += 1) {
  const update = Y.encodeStateAsUpdate(corruptDoc(seed))
  const replica = new Y.Doc()
  Y.applyUpdate(replica, update)
  out.push({ seed, update: Buffer.from(update).toString('base64'), timeline: readTimeline(replica) })
}
process.stdout.write(JSON.stringify(out))
