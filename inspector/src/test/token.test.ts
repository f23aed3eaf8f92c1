import assert from 'node:assert/strict'
import { test } from 'node:test'

import { readClaims, secondsLeft } from '../token.js'

const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

test('the subject and expiry of a JWT are read, never trusted for more', () => {
  const token = `${part({ alg: 'HS256' })}.${part({ sub: 'zoë', exp: 1000 })}.sig`
  const claims = readClaims(token)
  assert.deepEqual(claims, { sub: 'zoë', exp: 1000 })
  assert.equal(secondsLeft(claims!, 990_000), 10)
  assert.equal(secondsLeft(claims!, 1_001_000), -1)
  assert.deepEqual(readClaims(`${part({})}.${part({ sub: 'a' })}.x`), { sub: 'a', exp: null })
})

test('anything else is not a token the page can read', () => {
  for (const bad of ['', 'abc', 'a.b', `${part({})}.${part({ exp: 1 })}.x`, `${part({})}.!!!.x`, `${part({})}.${part([1])}.x`]) {
    assert.equal(readClaims(bad), null, bad)
  }
})
