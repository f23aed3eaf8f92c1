// Saved acknowledgements under load: writers that edit on a fixed schedule and time each of
// their updates from its send to the first `saved` message (y-websocket message type 100, the
// state vector now durable) whose state vector covers it.
//
//   node bench/node/writers.mjs -        (runs one after another, inputs on stdin)
//
// Input: {"urls": ["ws://...?saved=1&token=...", ...], "rate_per_s": 100, "duration_s": 6,
//         "warmup_s": 1, "drain_s": 5, "timeout_ms": 30000, "client": "ws" | "raw"}
// Per run, on stdin: the input as one JSON line; "go" once every process said it is ready;
// "close" after the result. On stdout: {"ready": n} once every writer is synced and its first
// edit and its warm-up (warmup_s at the run's rate, not timed) are saved, {"sending_ms": ...,
// "sent": n} when the last edit went out, the result once every update was saved (or drain_s
// after the last send), then {"closed": n}.
//
// Each writer owns one key of a `bench` map and sets it to the edit's number: one small update
// per edit, as a clip moved on a timeline is. What others send is read off the socket and
// dropped, never applied, so a writer costs little besides its own edits; this is why the
// benchmark uses this generator rather than Python writers, whose own event loop (5,000 edits
// and 20,000 relayed frames a second) was the slowest part of the measurement.
import {
  Y, EMPTY_STEP1, EMPTY_STEP2, SYNC_STEP1, SYNC_STEP2, Errors, closeAll, commands, cpuMs,
  emit, inputs, isSyncFrame, openSocket, updateFrame
} from './yws.mjs'
import { createRequire } from 'node:module'
import { monitorEventLoopDelay } from 'node:perf_hooks'

const require = createRequire(new URL('../../tests/interop/package.json', import.meta.url))
const decoding = require('lib0/decoding')

const MESSAGE_SAVED = 100

class Writer {
  constructor (index) {
    this.index = index
    this.doc = new Y.Doc()
    this.map = this.doc.getMap('bench')
    this.key = `w${index}`
    this.update = null
    this.doc.on('update', u => { this.update = u })
    // [own clock once the edit is applied, send time], oldest first.
    this.unsaved = []
    this.latencies = []
    this.recording = false
    this.sent = 0
    this.ws = null
  }

  edit (value, now) {
    this.map.set(this.key, value)
    this.unsaved.push([Y.getState(this.doc.store, this.doc.clientID), now])
    this.ws.send(updateFrame(this.update))
  }

  onSaved (data) {
    const now = performance.now()
    const decoder = decoding.createDecoder(data)
    decoding.readVarUint(decoder) // the message type
    const durable = Y.decodeStateVector(decoding.readVarUint8Array(decoder)).get(this.doc.clientID) ?? 0
    let n = 0
    while (n < this.unsaved.length && this.unsaved[n][0] <= durable) {
      if (this.recording) this.latencies.push(now - this.unsaved[n][1])
      n++
    }
    if (n) this.unsaved.splice(0, n)
  }
}

function connect (writer, client, url, timeoutMs, errors) {
  return new Promise(resolve => {
    const ws = openSocket(client, url, { deflate: false, timeoutMs })
    writer.ws = ws
    let settled = false
    const finish = (ok, why) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (!ok) { errors.add(`writer ${writer.index}: ${why}`); ws.terminate() }
      resolve(ok)
    }
    const timer = setTimeout(() => finish(false, `not synced in ${timeoutMs} ms`), timeoutMs)
    ws.on('open', () => ws.send(EMPTY_STEP1))
    ws.on('message', (data) => {
      if (data.length && data[0] === MESSAGE_SAVED) writer.onSaved(data)
      else if (isSyncFrame(data, SYNC_STEP1)) ws.send(EMPTY_STEP2) // the writer starts empty
      else if (isSyncFrame(data, SYNC_STEP2)) finish(true)
    })
    ws.on('error', (err) => finish(false, `${err.code ?? ''} ${err.message}`.trim()))
    ws.on('close', (code, reason) => {
      if (!settled) finish(false, `closed ${code} ${reason}`)
      else if (code !== 1000 && code !== 1005) errors.add(`writer ${writer.index}: closed by server ${code} ${reason}`)
    })
    ws.on('unexpected-response', (_req, res) => { finish(false, `HTTP ${res.statusCode}`); res.resume() })
  })
}

async function until (predicate, timeoutMs) {
  const deadline = performance.now() + timeoutMs
  while (!predicate()) {
    if (performance.now() > deadline) return false
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  return true
}

async function prepare (input, errors) {
  const timeoutMs = input.timeout_ms ?? 30000
  const client = input.client ?? 'raw'
  const writers = input.urls.map((_, i) => new Writer(i))
  const ok = await Promise.all(writers.map((w, i) => connect(w, client, input.urls[i], timeoutMs, errors)))
  const connected = writers.filter((_, i) => ok[i])
  // A first edit each, saved before the run: the rooms are loaded and every writer's item exists.
  for (const w of connected) w.edit(0, performance.now())
  if (!await until(() => connected.every(w => w.unsaved.length === 0), timeoutMs)) {
    errors.add('first edits not saved in time')
  }
  // Then warm up at the run's rate, not timed: a fresh process's first edits run before the
  // JIT has compiled them, and its slower loop showed as the first half second's latency.
  const warmupS = input.warmup_s ?? 1
  if (warmupS > 0) {
    const start = performance.now()
    await Promise.all(connected.map(w => write(w, input.rate_per_s ?? 100, warmupS, start)))
    if (!await until(() => connected.every(w => w.unsaved.length === 0), timeoutMs)) {
      errors.add('warm-up edits not saved in time')
    }
    for (const w of connected) w.sent = 0
  }
  return connected
}

// Sends on a fixed schedule: an edit that is late goes out at once, none is skipped.
async function write (writer, ratePerS, durationS, startAt) {
  const count = Math.max(1, Math.round(ratePerS * durationS))
  const periodMs = 1000 / ratePerS
  const start = startAt + Math.random() * periodMs
  for (let seq = 1; seq <= count; seq++) {
    const delay = start + (seq - 1) * periodMs - performance.now()
    if (delay > 0) await new Promise(resolve => setTimeout(resolve, delay))
    if (writer.ws.readyState !== 1) break
    writer.edit(seq, performance.now())
    writer.sent++
  }
}

async function run (input, writers, errors) {
  const durationS = input.duration_s ?? 6
  const drainS = input.drain_s ?? 5
  const ratePerS = input.rate_per_s ?? 100
  const cpuStart = process.cpuUsage()
  // How late this process's own event loop ran: a generator that falls behind shows here,
  // not as the server's latency.
  const loopDelay = monitorEventLoopDelay({ resolution: 1 })
  loopDelay.enable()
  for (const w of writers) w.recording = true
  const start = performance.now()
  await Promise.all(writers.map(w => write(w, ratePerS, durationS, start)))
  const sendingMs = performance.now() - start
  emit({ sending_ms: sendingMs, sent: writers.reduce((n, w) => n + w.sent, 0) })
  const drained = await until(() => writers.every(w => w.unsaved.length === 0), drainS * 1000)
  for (const w of writers) w.recording = false
  loopDelay.disable()
  const latencies = writers.flatMap(w => w.latencies.map(ms => Math.round(ms * 100) / 100))
  return {
    writers: writers.length,
    sent: writers.reduce((n, w) => n + w.sent, 0),
    saved: latencies.length,
    unsaved: writers.reduce((n, w) => n + w.unsaved.length, 0),
    drained,
    sending_ms: sendingMs,
    latencies_ms: latencies,
    cpu_ms: cpuMs(cpuStart),
    loop_delay_p99_ms: loopDelay.percentile(99) / 1e6,
    loop_delay_max_ms: loopDelay.max / 1e6,
    errors: errors.list,
    error_count: errors.count
  }
}

const control = commands()
for await (const input of inputs(control)) {
  const errors = new Errors()
  const writers = await prepare(input, errors)
  emit({ ready: writers.length, errors: errors.list })
  if (!await control.waitFor('go')) break
  emit(await run(input, writers, errors))
  if (!await control.waitFor('close')) break
  emit({ closed: await closeAll(writers.map(w => w.ws), 10000) })
}
process.exit(0)
