#!/usr/bin/env node
// The PLAIN official client (y-websocket's WebsocketProvider, no SDK) after each close code.
//
//   node plain_provider_closes.mjs --url ws://HOST:PORT/ws --room PROJECT_ID --token T
//        --scenario NAME [--observe-ms N] [--timeout-ms N]
//
// Opens one provider and counts the sockets it opens (its WebSocket class is wrapped), then:
//   quiet      does nothing (the server's idle timeout closes it: 4508)
//   flood      sends presence far faster than the rate limit after syncing (4529)
//   malformed  sends a truncated sync update after syncing (4400)
//   too-big    makes an edit larger than the server's message limit (4413)
//   refused    nothing: the server refuses the join itself (4401, 4403, 4404)
//   saved      asks for ?saved=1 without a handler for message type 100, makes an edit and
//              waits for the ack (y-websocket logs "Unable to compute message")
//   saved-handler  the same with provider.messageHandlers[100] registered (the README snippet)
//   restart    prints "[plain] synced" to stderr, then waits until it synced a second time
//              (the driver restarts the server meanwhile: 1012)
// and observes for --observe-ms. Prints
//   {"attempts": N, "closes": [codes...], "syncs": N, "closed": {code, reason} | null,
//    "unableToCompute": N, "saved": [durable clock of this client, ...], "ownClock": N}

import { parseArgs } from 'node:util'
import * as decoding from 'lib0/decoding'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    room: { type: 'string' },
    token: { type: 'string' },
    scenario: { type: 'string' },
    'observe-ms': { type: 'string', default: '2000' },
    'timeout-ms': { type: 'string', default: '20000' }
  }
})
if (!args.url || !args.room || !args.token || !args.scenario) {
  process.stderr.write('--url, --room, --token and --scenario are required\n')
  process.exit(2)
}
const observeMs = Number(args['observe-ms'])
const deadline = Date.now() + Number(args['timeout-ms'])
const scenario = args.scenario

let unableToCompute = 0
const originalError = console.error
console.error = (...parts) => {
  if (parts.map(String).join(' ').includes('Unable to compute message')) unableToCompute += 1
  originalError(...parts)
}

let attempts = 0
class CountingSocket extends WebSocket {
  constructor (url, protocols) {
    super(url, protocols)
    attempts += 1
  }
}

const doc = new Y.Doc()
const params = { token: args.token }
if (scenario.startsWith('saved')) params.saved = '1'
const provider = new WebsocketProvider(args.url, args.room, doc, {
  params, WebSocketPolyfill: CountingSocket, disableBc: true
})
const saved = []
if (scenario === 'saved-handler') {
  // The server's saved message: type 100, then the durable state vector as varbytes.
  provider.messageHandlers[100] = (_encoder, decoder) => {
    const stateVector = Y.decodeStateVector(decoding.readVarUint8Array(decoder))
    saved.push(stateVector.get(doc.clientID) ?? 0)
  }
}
const closes = []
let syncs = 0
let closed = null
provider.on('connection-close', (event) => { if (event) closes.push(event.code) })
provider.on('closed', (event) => { closed = { code: event.code, reason: event.reason } })
provider.on('sync', (isSynced) => { if (isSynced) syncs += 1 })

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const until = async (what, predicate) => {
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

try {
  if (scenario !== 'refused') await until('the first sync', () => syncs > 0)
  if (scenario === 'restart') {
    process.stderr.write('[plain] synced\n')
    await until('the sync after the restart', () => syncs > 1)
  }
  if (scenario === 'flood') {
    for (let i = 0; i < 100; i += 1) provider.awareness.setLocalStateField('playhead_ms', i)
  } else if (scenario === 'malformed') {
    provider.ws.send(new Uint8Array([0, 2, 5, 1]))
  } else if (scenario === 'too-big') {
    doc.getMap('project').set('title', 'x'.repeat(200 * 1024))
  } else if (scenario.startsWith('saved')) {
    doc.getMap('project').set('title', 'saved?')
    // The ack arrives after the commit; give it the observation window.
  }
  await sleep(observeMs)
  const ownClock = Y.decodeStateVector(Y.encodeStateVector(doc)).get(doc.clientID) ?? 0
  process.stdout.write(JSON.stringify({ attempts, closes, syncs, closed, unableToCompute, saved, ownClock }))
  provider.destroy()
  provider.awareness.destroy()
  process.exit(0)
} catch (error) {
  process.stderr.write(`[plain] ${error.stack ?? error}\n`)
  process.exit(1)
}
