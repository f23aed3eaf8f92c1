/**
 * Shared pieces of the live tests, which tests/client/test_live_*.py run against a real server.
 * The driver passes the server and the project through the environment:
 *
 *   FLOWAI_TEST_WS_URL      ws://127.0.0.1:PORT/ws
 *   FLOWAI_TEST_HTTP_URL    http://127.0.0.1:PORT
 *   FLOWAI_TEST_PROJECT     a project alice owns (bob is an editor)
 *   FLOWAI_TEST_JWT_SECRET  the server's HS256 secret (tokens are minted here, as an auth
 *                           service would, so a test can hand out fresh ones)
 *   FLOWAI_TEST_RESULT      a file to write figures to (JSON)
 */

import { createHmac } from 'node:crypto'
import { writeFileSync } from 'node:fs'

import WebSocket from 'ws'

export function env (name: string): string {
  const value = process.env[name]
  if (value === undefined || value === '') throw new Error(`${name} is not set: run this test through pytest`)
  return value
}

export const wsUrl = (): string => env('FLOWAI_TEST_WS_URL')
export const httpUrl = (): string => env('FLOWAI_TEST_HTTP_URL')
export const projectId = (): string => env('FLOWAI_TEST_PROJECT')

function base64url (data: string | Buffer): string {
  return Buffer.from(data).toString('base64url')
}

/** An HS256 token shaped like the server's `mint_token` (and Supabase's). */
export function mintToken (userId: string, ttlS = 3600): string {
  const now = Math.floor(Date.now() / 1000)
  const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))
  const claims = base64url(JSON.stringify({ sub: userId, role: 'authenticated', aud: 'authenticated', iat: now, exp: now + ttlS }))
  const signature = createHmac('sha256', env('FLOWAI_TEST_JWT_SECRET')).update(`${header}.${claims}`).digest()
  return `${header}.${claims}.${base64url(signature)}`
}

/** A `ws` WebSocket class that records the URL of every socket opened through it. */
export function recordingSocket (): { Socket: typeof globalThis.WebSocket, urls: string[] } {
  const urls: string[] = []
  class RecordingSocket extends WebSocket {
    constructor (url: string | URL, protocols?: string | string[]) {
      super(url, protocols)
      urls.push(String(url))
    }
  }
  return { Socket: RecordingSocket as unknown as typeof globalThis.WebSocket, urls }
}

export function tokenOf (url: string): string | null {
  return new URL(url).searchParams.get('token')
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Wait until `predicate()` holds, checking every 10 ms; throws after `timeoutMs`. */
export async function waitFor (what: string, predicate: () => boolean, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

export function writeResult (result: unknown): void {
  const path = process.env['FLOWAI_TEST_RESULT']
  if (path !== undefined && path !== '') writeFileSync(path, JSON.stringify(result))
}

export async function api (userId: string, path: string): Promise<unknown> {
  const response = await fetch(`${httpUrl()}${path}`, { headers: { Authorization: `Bearer ${mintToken(userId)}` } })
  if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`)
  return await response.json()
}
