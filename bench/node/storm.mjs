// Join storm: open every client's websocket at once, y-websocket framing, and time each one
// from the start of the storm to the first sync step 2 the server sends it.
//
//   node bench/node/storm.mjs input.json      (one storm)
//   node bench/node/storm.mjs -               (storms one after another, inputs on stdin)
//
// Input: {"urls": ["ws://...?token=...", ...], "timeout_ms": 60000, "deflate": true,
//         "client": "ws" | "raw"}   (raw: the lean client of rawws.mjs, which offers no deflate)
// Per storm, on stdin: the input as one line (unless given as a file), then "go" starts the
// storm and, after its result, "close" closes every socket. On stdout, one JSON object per
// line: {"ready": n}, the storm's result, then {"closed": n, "cpu_ms": ...}. The process stays
// up between storms (a warm JIT, as a long-running client would have) until stdin ends.
import {
  EMPTY_STEP1, EMPTY_STEP2, SYNC_STEP1, SYNC_STEP2, Errors, closeAll, commands,
  cpuMs, emit, inputs, isSyncFrame, openSocket, systemCpuMs
} from './yws.mjs'

async function storm (urls, timeoutMs, deflate, client) {
  const errors = new Errors()
  const syncedMs = new Array(urls.length).fill(null)
  const sockets = new Array(urls.length)
  let synced = 0
  let failed = 0
  let finish
  const done = new Promise(resolve => { finish = resolve })
  const settle = () => { if (synced + failed === urls.length) finish() }
  const cpuStart = process.cpuUsage()
  const start = performance.now()
  for (let i = 0; i < urls.length; i++) {
    const ws = openSocket(client, urls[i], { deflate, timeoutMs })
    sockets[i] = ws
    let lost = false
    const fail = (why) => {
      if (syncedMs[i] !== null || lost) return
      lost = true
      failed++
      errors.add(`client ${i}: ${why}`)
      settle()
    }
    ws.on('open', () => ws.send(EMPTY_STEP1))
    ws.on('message', (data) => {
      if (isSyncFrame(data, SYNC_STEP1)) {
        ws.send(EMPTY_STEP2)
      } else if (isSyncFrame(data, SYNC_STEP2) && syncedMs[i] === null) {
        syncedMs[i] = performance.now() - start
        synced++
        settle()
      }
    })
    ws.on('error', (err) => fail(`${err.code ?? ''} ${err.message}`.trim()))
    ws.on('close', (code, reason) => fail(`closed ${code} ${reason}`))
    ws.on('unexpected-response', (_req, res) => {
      fail(`HTTP ${res.statusCode}`)
      res.resume()
    })
  }
  const openedMs = performance.now() - start
  let timer
  await Promise.race([done, new Promise(resolve => { timer = setTimeout(resolve, timeoutMs) })])
  clearTimeout(timer)
  const result = {
    clients: urls.length,
    synced,
    all_synced_ms: synced === urls.length ? Math.max(...syncedMs) : null,
    elapsed_ms: performance.now() - start,
    // How long this process took just to start every connection.
    open_loop_ms: openedMs,
    synced_ms: syncedMs,
    cpu_ms: cpuMs(cpuStart),
    system_cpu_ms: systemCpuMs(cpuStart),
    errors: errors.list,
    error_count: errors.count
  }
  if (synced + failed < urls.length) {
    errors.add(`${urls.length - synced - failed} clients neither synced nor failed in ${timeoutMs} ms`)
  }
  return { result, sockets, cpuStart }
}

const control = commands()
for await (const input of inputs(control)) {
  emit({ ready: input.urls.length })
  if (!await control.waitFor('go')) break
  const { result, sockets, cpuStart } = await storm(
    input.urls, input.timeout_ms ?? 60000, input.deflate ?? true, input.client ?? 'ws')
  emit(result)
  if (!await control.waitFor('close')) break
  const closed = await closeAll(sockets, 10000)
  emit({ closed, cpu_ms: cpuMs(cpuStart) })
}
process.exit(0)
