import assert from 'node:assert/strict'
import { test } from 'node:test'

import { TokenBox } from '../tokens.js'

const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
const jwt = (sub: string, exp: number): string => `${part({ alg: 'HS256' })}.${part({ sub, exp })}.sig`
const now = (): number => Math.floor(Date.now() / 1000)

class MemoryStorage {
  private readonly items = new Map<string, string>()
  get length (): number { return this.items.size }
  clear (): void { this.items.clear() }
  getItem (key: string): string | null { return this.items.get(key) ?? null }
  key (): string | null { return null }
  removeItem (key: string): void { this.items.delete(key) }
  setItem (key: string, value: string): void { this.items.set(key, value) }
}

test('a live token is handed out at once and kept for the tab', async () => {
  const storage = new MemoryStorage()
  const box = new TokenBox(storage)
  const token = jwt('alice', now() + 60)
  box.set(` ${token} `)
  assert.equal(await box.next(), token)
  assert.equal(new TokenBox(storage).token, token)
})

test('after a refusal the connection waits for a new token', async () => {
  const box = new TokenBox(null)
  const first = jwt('alice', now() + 60)
  box.set(first)
  box.markRefused()
  let got: string | null = null
  const waiting = box.next().then((t) => { got = t })
  await Promise.resolve()
  assert.equal(box.waiting, true)
  assert.equal(got, null)
  // An expired token does not release the wait; a live one does.
  box.set(jwt('alice', now() - 5))
  await Promise.resolve()
  assert.equal(got, null)
  const second = jwt('alice', now() + 60)
  box.set(second)
  await waiting
  assert.equal(got, second)
  assert.equal(box.waiting, false)
})

test('an expired token is never sent', async () => {
  const box = new TokenBox(null)
  box.set(jwt('alice', now() - 1))
  assert.equal(box.usable(Date.now()), false)
  assert.equal(box.usable((now() - 10) * 1000), true)
  box.set('not-a-jwt')
  assert.equal(await box.next(), 'not-a-jwt')
})
