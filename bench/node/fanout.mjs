// Fan-out: one writer edits at a fixed rate, every observer of the room times each edit from
// the writer's send to its own receive.
//
//   node bench/node/fanout.mjs -        (runs one after another, inputs on stdin)
//
// Input: {"writer_url": "ws://..." | null, "observer_urls": [...], "rate_per_s": 10,
//         (or "rooms": [{"writer_urls": [...], "observer_urls": [...]}, ...] for several rooms,
//          each writer at rate_per_s)
//         "duration_s": 10, "drain_s": 2, "deflate": true, "connect_batch": 100,
//         "client": "ws" | "raw"}
// Per run, on stdin: the input as one JSON line; "go" once every process said it is ready;
// "close" after the result. On stdout: {"ready": ...} once every observer (and the writer)
// is synced, the result after duration + drain, then {"closed": n}.
//
// Each edit sets the writer's key of a `bench` map to "@@<seq>:<send time in ms>@@". The
// string travels verbatim in the update bytes whether the server forwards the frame (ours, the
// bare relay) or re-encodes the update (the reference), so an observer finds it with one byte
// search of the raw frame, decodes nothing, and needs no shared table with the writer: the send
// time is in the edit itself (wall clock with sub-millisecond resolution, comparable across the
// generator processes of one machine).
import {
  Y, EMPTY_STEP1, EMPTY_STEP2, SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE, Errors, closeAll,
  commands, cpuMs, emit, inputs, isSyncFrame, nowMs, openSocket, updateFrame
} from './yws.mjs'

const MARK = Buffer.from('@@')
const BUCKET_MS = 0.1 // latency histogram resolution

function connect (client, url, deflate, timeoutMs, errors, onFrame) {
  return new Promise(resolve => {
    const ws = openSocket(client, url, { deflate, timeoutMs })
    let settled = false
    const finish = (ok, why) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (!ok) { errors.add(why); ws.terminate() }
      resolve(ok ? ws : null)
    }
    const timer = setTimeout(() => finish(false, `not synced in ${timeoutMs} ms`), timeoutMs)
    ws.on('open', () => ws.send(EMPTY_STEP1))
    ws.on('message', (data) => {
      if (isSyncFrame(data, SYNC_STEP1)) ws.send(EMPTY_STEP2)
      else if (isSyncFrame(data, SYNC_STEP2)) finish(true)
      if (settled) onFrame(data)
    })
    ws.on('error', (err) => finish(false, `${err.code ?? ''} ${err.message}`.trim()))
    ws.on('close', (code, reason) => {
      if (!settled) finish(false, `closed ${code} ${reason}`)
      else if (code !== 1000 && code !== 1005) errors.add(`closed by server ${code} ${reason}`)
    })
    ws.on('unexpected-response', (_req, res) => { finish(false, `HTTP ${res.statusCode}`); res.resume() })
  })
}

class Observer {
  constructor () { this.latencies = []; this.recording = false }
  onFrame (data) {
    if (!this.recording || !isSyncFrame(data, SYNC_UPDATE)) return
    const at = nowMs()
    const open = data.indexOf(MARK)
    if (open < 0) return
    const close = data.indexOf(MARK, open + 2)
    if (close < 0) return
    const [, sentAt] = data.toString('latin1', open + 2, close).split(':')
    this.latencies.push(at - Number(sentAt))
  }
}

function percentile (sorted, q) {
  if (sorted.length === 0) return null
  return sorted[Math.max(0, Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1))]
}

// The rooms of a run: `rooms` as given, or the one room of `writer_url` and `observer_urls`.
function roomsOf (input) {
  if (input.rooms) return input.rooms
  return [{ writer_urls: input.writer_url ? [input.writer_url] : [], observer_urls: input.observer_urls }]
}

async function prepare (input, errors) {
  const deflate = input.deflate ?? true
  const timeoutMs = input.timeout_ms ?? 30000
  const batch = input.connect_batch ?? 100
  const client = input.client ?? 'ws'
  const sockets = []
  const rooms = []
  for (const spec of roomsOf(input)) {
    const room = { observers: [], writers: [] }
    const urls = spec.observer_urls
    for (let first = 0; first < urls.length; first += batch) {
      const opened = await Promise.all(urls.slice(first, first + batch).map(url => {
        const observer = new Observer()
        return connect(client, url, deflate, timeoutMs, errors, d => observer.onFrame(d))
          .then(ws => ({ ws, observer }))
      }))
      for (const { ws, observer } of opened) {
        if (ws) { room.observers.push(observer); sockets.push(ws) }
      }
    }
    for (const url of spec.writer_urls) {
      const writer = await connect(client, url, deflate, timeoutMs, errors, () => {})
      if (writer) { room.writers.push(writer); sockets.push(writer) }
    }
    rooms.push(room)
  }
  return { rooms, sockets }
}

// Each writer sets its own key, so the edits of several writers in a room never conflict.
async function write (ws, key, ratePerS, durationS) {
  const doc = new Y.Doc()
  const map = doc.getMap('bench')
  let update = null
  doc.on('update', u => { update = u })
  const count = Math.max(1, Math.round(ratePerS * durationS))
  const periodMs = 1000 / ratePerS
  // Writers of a run start spread over one period rather than all at once.
  const start = performance.now() + Math.random() * periodMs
  let sent = 0
  for (let seq = 0; seq < count; seq++) {
    const delay = start + seq * periodMs - performance.now()
    if (delay > 0) await new Promise(resolve => setTimeout(resolve, delay))
    if (ws.readyState !== 1) break
    map.set(key, `@@${seq}:${nowMs().toFixed(3)}@@`)
    ws.send(updateFrame(update))
    sent++
  }
  return sent
}

async function run (input, prepared, errors) {
  const { rooms } = prepared
  const durationS = input.duration_s ?? 10
  const drainS = input.drain_s ?? 2
  const ratePerS = input.rate_per_s ?? 10
  const cpuStart = process.cpuUsage()
  const start = performance.now()
  const observers = rooms.flatMap(r => r.observers)
  for (const o of observers) o.recording = true
  const window = new Promise(resolve => setTimeout(resolve, (durationS + drainS) * 1000))
  const sentPerRoom = await Promise.all(rooms.map(async room => {
    const counts = await Promise.all(room.writers.map((ws, k) => write(ws, `w${k}`, ratePerS, durationS)))
    return counts.reduce((a, b) => a + b, 0)
  }))
  await window
  for (const o of observers) o.recording = false
  const cpu = cpuMs(cpuStart)
  const wall = performance.now() - start
  const hist = {}
  const perObserverP99 = []
  const perObserverReceived = []
  const roomResults = []
  for (const [r, room] of rooms.entries()) {
    const all = []
    for (const o of room.observers) {
      const sorted = Float64Array.from(o.latencies).sort()
      perObserverReceived.push(sorted.length)
      perObserverP99.push(percentile(sorted, 0.99))
      for (const ms of sorted) {
        all.push(ms)
        const bucket = Math.floor(ms / BUCKET_MS)
        hist[bucket] = (hist[bucket] ?? 0) + 1
      }
    }
    const sorted = Float64Array.from(all).sort()
    roomResults.push({
      observers: room.observers.length,
      writers: room.writers.length,
      sent: sentPerRoom[r],
      received: sorted.length,
      p99_ms: percentile(sorted, 0.99)
    })
  }
  return {
    observers: observers.length,
    writer: rooms.some(r => r.writers.length > 0),
    sent: sentPerRoom.reduce((a, b) => a + b, 0),
    received: perObserverReceived.reduce((a, b) => a + b, 0),
    rooms: roomResults,
    bucket_ms: BUCKET_MS,
    hist,
    per_observer_p99_ms: perObserverP99,
    per_observer_received: perObserverReceived,
    cpu_ms: cpu,
    wall_ms: wall,
    errors: errors.list,
    error_count: errors.count
  }
}

const control = commands()
for await (const input of inputs(control)) {
  const errors = new Errors()
  const connectStart = process.cpuUsage()
  const prepared = await prepare(input, errors)
  emit({
    ready: prepared.rooms.reduce((n, r) => n + r.observers.length, 0),
    writer: prepared.rooms.some(r => r.writers.length > 0),
    connect_cpu_ms: cpuMs(connectStart),
    errors: errors.list
  })
  if (!await control.waitFor('go')) break
  emit(await run(input, prepared, errors))
  if (!await control.waitFor('close')) break
  emit({ closed: await closeAll(prepared.sockets, 10000) })
}
process.exit(0)
