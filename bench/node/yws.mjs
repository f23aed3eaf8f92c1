// What the storm and fan-out generators share: the interop packages, y-websocket frames, the
// control protocol on stdin (one word per line) and results on stdout (one JSON object per line).
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { RawWebSocket } from './rawws.mjs'

// The packages are installed once, for the interop tests (`npm ci` in tests/interop).
const require = createRequire(new URL('../../tests/interop/package.json', import.meta.url))
export const WebSocket = require('ws')
export const Y = require('yjs')
const encoding = require('lib0/encoding')
const syncProtocol = require('y-protocols/sync')

export const MESSAGE_SYNC = 0
export const SYNC_STEP1 = 0
export const SYNC_STEP2 = 1
export const SYNC_UPDATE = 2

function syncFrame (write) {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MESSAGE_SYNC)
  write(encoder)
  return Buffer.from(encoding.toUint8Array(encoder))
}

// Every client starts from an empty document: its step 1 (state vector) and its answer to
// the server's step 1 (nothing the server lacks) are the same bytes for all, built once.
const empty = new Y.Doc()
export const EMPTY_STEP1 = syncFrame(e => syncProtocol.writeSyncStep1(e, empty))
export const EMPTY_STEP2 = syncFrame(e => syncProtocol.writeSyncStep2(e, empty))

export function updateFrame (update) {
  return syncFrame(e => syncProtocol.writeUpdate(e, update))
}

// Wall-clock milliseconds with sub-millisecond resolution, comparable across processes of
// this machine (the fan-out writer and its observers may live in different ones).
// One of the two clients: `ws` (the library y-websocket runs on in Node) or the lean one.
export function openSocket (kind, url, { deflate, timeoutMs }) {
  if (kind === 'raw') return new RawWebSocket(url, { handshakeTimeout: timeoutMs })
  // Browsers offer permessage-deflate; the server decides whether to use it.
  return new WebSocket(url, { perMessageDeflate: deflate, handshakeTimeout: timeoutMs })
}

export function nowMs () {
  return performance.timeOrigin + performance.now()
}

export function cpuMs (since) {
  const used = process.cpuUsage(since)
  return (used.user + used.system) / 1000
}

// The kernel's share: over loopback, sending a packet runs the receiving side's TCP work in
// the sender's context, so a generator's system time includes some of the servers' too.
export function systemCpuMs (since) {
  return process.cpuUsage(since).system / 1000
}

// Commands arrive on stdin, one per line: a JSON object (a run's input) or a control word.
export function commands () {
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
  async function next () {
    const line = await lines.next()
    return line.done ? null : line.value.trim()
  }
  async function waitFor (word) {
    for (;;) {
      const line = await next()
      if (line === null) return false // The driver went away: stop.
      if (line === word) return true
    }
  }
  async function nextInput () {
    for (;;) {
      const line = await next()
      if (line === null) return null
      if (line.startsWith('{')) return JSON.parse(line)
    }
  }
  return { nextInput, waitFor }
}

// A run's input from a JSON file named on the command line (one run), else from stdin.
export async function * inputs (control) {
  if (process.argv[2] && process.argv[2] !== '-') {
    yield JSON.parse(readFileSync(process.argv[2], 'utf8'))
    return
  }
  for (;;) {
    const input = await control.nextInput()
    if (input === null) return
    yield input
  }
}

export function emit (object) {
  process.stdout.write(JSON.stringify(object) + '\n')
}

// Bounded error list: a storm of failures must not flood the report.
export class Errors {
  constructor (max = 20) { this.max = max; this.list = []; this.count = 0 }
  add (message) { this.count++; if (this.list.length < this.max) this.list.push(message) }
}

export function isSyncFrame (data, kind) {
  return data.length >= 2 && data[0] === MESSAGE_SYNC && data[1] === kind
}

export async function closeAll (sockets, timeoutMs) {
  // Both clients number their states as the standard does: 0 connecting ... 3 closed.
  const open = sockets.filter(ws => ws && ws.readyState <= 1)
  const closed = open.map(ws => new Promise(resolve => {
    ws.once('close', resolve)
    if (ws.readyState === 1) ws.close(1000)
    else ws.terminate()
  }))
  let timer
  const timeout = new Promise(resolve => { timer = setTimeout(resolve, timeoutMs) })
  await Promise.race([Promise.all(closed), timeout])
  clearTimeout(timer)
  for (const ws of open) if (ws.readyState !== 3) ws.terminate()
  return open.length
}
