// Shared helpers of the browser scenarios: Debian's Chromium driven by playwright-core (from
// inspector/node_modules), the inspector opened as a user, tokens, the SDK under Node, and the
// line protocol with the pytest side (a step line on stdout, answered by one line on stdin).
import { createHmac } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
export const INSPECTOR_DIR = resolve(here, '../../inspector')
const require = createRequire(join(INSPECTOR_DIR, 'package.json'))
const { chromium } = require('playwright-core')

export const CHROMIUM = process.env.FLOWAI_CHROMIUM ?? '/usr/bin/chromium'
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]
// Every wait is bounded; a scenario that cannot make progress fails instead of hanging.
export const WAIT_MS = 15_000

export function log (...args) {
  process.stderr.write(`[browser] ${args.join(' ')}\n`)
}

/** Wall-clock milliseconds with sub-millisecond resolution (comparable with the pages'). */
export function nowMs () {
  return performance.timeOrigin + performance.now()
}

// --- the pytest side -------------------------------------------------------------------------

const lines = createInterface({ input: process.stdin })
const pending = []
const queued = []
lines.on('line', (line) => {
  const waiter = pending.shift()
  if (waiter !== undefined) waiter(line)
  else queued.push(line)
})

/** Ask the pytest side to do `step` (stop a server, hold a lock...) and wait for its answer. */
export async function step (name, data = {}) {
  process.stdout.write(JSON.stringify({ step: name, ...data }) + '\n')
  const line = queued.length > 0
    ? queued.shift()
    : await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to step ${name}`)), 60_000)
      pending.push((l) => { clearTimeout(timer); resolve(l) })
    })
  const answer = JSON.parse(line)
  if (answer.error !== undefined) throw new Error(`step ${name} failed: ${answer.error}`)
  return answer
}

export function finish (result) {
  process.stdout.write(JSON.stringify({ result }) + '\n')
}

// --- tokens ----------------------------------------------------------------------------------

const b64url = (data) => Buffer.from(data).toString('base64url')

/** An HS256 token shaped like the server's `mint_token` (and Supabase's). */
export function mintToken (secret, sub, ttlS = 3600) {
  const now = Math.floor(Date.now() / 1000)
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))
  const claims = b64url(JSON.stringify({ sub, role: 'authenticated', aud: 'authenticated', iat: now, exp: now + ttlS }))
  const signature = createHmac('sha256', secret).update(`${header}.${claims}`).digest('base64url')
  return { token: `${header}.${claims}.${signature}`, exp: now + ttlS }
}

// --- the browser -----------------------------------------------------------------------------

export async function launch () {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 30_000
  })
  return browser
}

/** A new browser context (its own storage, its own profile state) with the inspector open
 * as the holder of `token`, showing `projectId` once it is synced. */
export async function openInspector (browser, baseUrl, token, projectId, { waitSynced = true } = {}) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } })
  const page = await context.newPage()
  page.setDefaultTimeout(WAIT_MS)
  const sockets = []
  page.on('websocket', (ws) => {
    const entry = { url: ws.url(), openedAt: nowMs(), saved: [], closed: false }
    sockets.push(entry)
    ws.on('framereceived', (frame) => {
      // The server's saved ack is message type 100 (one varuint byte, 0x64).
      if (typeof frame.payload !== 'string' && frame.payload[0] === 100) entry.saved.push(nowMs())
    })
    ws.on('close', () => { entry.closed = true })
  })
  page.on('pageerror', (error) => log('page error:', error.message))
  await page.goto(`${baseUrl}/#project=${projectId}`)
  await page.getByTestId('token-input').fill(token)
  await page.getByTestId('token-apply').click()
  if (waitSynced) await waitStatus(page, 'synced')
  return { context, page, sockets }
}

export async function waitStatus (page, status) {
  await page.locator(`[data-testid=connection-status][data-status=${status}]`).waitFor()
}

export async function savedState (page) {
  return page.getByTestId('saved-state').getAttribute('data-state')
}

/** Record, in the page, when each clip (by label and start) first appears in the timeline. */
export async function watchClips (page) {
  await page.evaluate(() => {
    window.__clipsSeen = {}
    const timeline = document.getElementById('timeline')
    const check = () => {
      const t = performance.timeOrigin + performance.now()
      const seen = window.__clipsSeen
      for (const el of timeline.querySelectorAll('.clip')) {
        const key = `${el.textContent}@${el.dataset.startMs}@${el.dataset.trackId}`
        if (!(key in seen)) seen[key] = t
      }
    }
    new MutationObserver(check).observe(timeline, { childList: true, subtree: true, attributes: true })
    check()
    // When the person submitted a form or let go of a dragged clip: the start of an edit.
    window.__editAt = null
    document.addEventListener('submit', () => { window.__editAt = performance.timeOrigin + performance.now() }, true)
    document.addEventListener('pointerup', () => { window.__editAt = performance.timeOrigin + performance.now() }, true)
  })
}

/** Forget what was seen: the next appearance of any clip counts from now on. */
export async function forgetSeen (page) {
  await page.evaluate(() => { window.__clipsSeen = {} })
}

/** Wall-clock time at which `page` first showed a clip labelled `label` starting at `startMs`. */
export async function clipSeenAt (page, label, startMs, trackId) {
  const key = `${label}@${startMs}@${trackId}`
  const handle = await page.waitForFunction((k) => window.__clipsSeen?.[k] ?? null, key, { timeout: WAIT_MS })
  return handle.jsonValue()
}

export async function editStartedAt (page) {
  return page.evaluate(() => window.__editAt)
}

export async function trackIdByName (page, name) {
  const handle = await page.waitForFunction((n) => {
    for (const row of document.querySelectorAll('#timeline .row')) {
      if (row.querySelector('.track-name')?.textContent === n) return row.querySelector('.lane').dataset.trackId
    }
    return null
  }, name, { timeout: WAIT_MS })
  return handle.jsonValue()
}

// --- editing through the page's UI -----------------------------------------------------------

export async function uiAddTrack (page, kind, name) {
  await page.getByTestId('track-kind').selectOption(kind)
  await page.getByTestId('track-name').fill(name)
  await page.getByTestId('add-track').click()
  return trackIdByName(page, name)
}

export async function uiAddClip (page, { trackId, kind, startMs, durationMs, text }) {
  await page.locator(`[data-testid=clip-track] option[value="${trackId}"]`).waitFor({ state: 'attached' })
  await page.getByTestId('clip-track').selectOption(trackId)
  await page.getByTestId('clip-kind').selectOption(kind)
  await page.getByTestId('clip-start').fill(String(startMs))
  await page.getByTestId('clip-duration').fill(String(durationMs))
  await page.getByTestId('clip-text').fill(text)
  await page.getByTestId('add-clip').click()
  const clip = page.locator('#timeline .clip', { hasText: text }).first()
  await clip.waitFor()
  return clip.getAttribute('data-clip-id')
}

export async function uiMoveClip (page, clipId, startMs) {
  await page.locator(`#timeline .clip[data-clip-id="${clipId}"]`).click()
  await page.getByTestId('move-start').fill(String(startMs))
  await page.getByTestId('move-clip').click()
}

/** Drag a clip horizontally by `dx` pixels with the mouse. */
export async function uiDragClip (page, clipId, dx) {
  const box = await page.locator(`#timeline .clip[data-clip-id="${clipId}"]`).boundingBox()
  const x = box.x + Math.min(10, box.width / 2)
  const y = box.y + box.height / 2
  await page.mouse.move(x, y)
  await page.mouse.down()
  for (let i = 1; i <= 5; i++) await page.mouse.move(x + (dx * i) / 5, y)
  await page.mouse.up()
}

// --- the SDK under Node ----------------------------------------------------------------------

/** Bundle @flowai/client from its source for Node (as the page's build does for the browser)
 * and import it, with the `ws` WebSocket class. */
export async function loadSdk () {
  const { build } = require('esbuild')
  const WebSocket = require('ws')
  const dir = mkdtempSync(join(tmpdir(), 'flowai-sdk-'))
  const outfile = join(dir, 'sdk.mjs')
  const shared = /^(yjs|y-websocket|y-protocols|lib0)(\/.*)?$/
  await build({
    entryPoints: [join(INSPECTOR_DIR, 'node_modules/@flowai/client/src/index.ts')],
    bundle: true,
    format: 'esm',
    platform: 'node',
    outfile,
    logLevel: 'warning',
    plugins: [{
      name: 'dedupe-yjs',
      setup (b) {
        b.onResolve({ filter: shared }, (args) => args.resolveDir === INSPECTOR_DIR
          ? undefined
          : b.resolve(args.path, { kind: args.kind, resolveDir: INSPECTOR_DIR }))
      }
    }]
  })
  const sdk = await import(pathToFileURL(outfile).href)
  rmSync(dir, { recursive: true, force: true })
  return { sdk, WebSocket }
}

export function median (values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}
