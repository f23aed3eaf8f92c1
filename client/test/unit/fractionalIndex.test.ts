import assert from 'node:assert/strict'
import { test } from 'node:test'

import { FractionalIndexError, isValidKey, keyBetween, spreadKeys } from '../../src/index.js'
import { readVectors } from './vectors.js'

interface Vectors {
  key_between: Array<{ a: string | null, b: string | null, key?: string, error?: true }>
  spread_keys: Record<string, string[]>
  is_valid_key: Array<{ input: unknown, valid: boolean }>
}

const vectors = readVectors<Vectors>('fractional_index.json')

test('keyBetween gives the server key for every vector, and refuses where the server refuses', () => {
  assert.ok(vectors.key_between.length > 500)
  for (const { a, b, key, error } of vectors.key_between) {
    if (error === true) {
      assert.throws(() => keyBetween(a, b), FractionalIndexError, `${a} .. ${b}`)
    } else {
      assert.equal(keyBetween(a, b), key, `${a} .. ${b}`)
    }
  }
})

test('spreadKeys gives the server keys for every size', () => {
  for (const [n, keys] of Object.entries(vectors.spread_keys)) {
    assert.deepEqual(spreadKeys(Number(n)), keys, `n=${n}`)
  }
  assert.throws(() => spreadKeys(-1), FractionalIndexError)
})

test('isValidKey agrees with the server', () => {
  for (const { input, valid } of vectors.is_valid_key) {
    assert.equal(isValidKey(input), valid, JSON.stringify(input))
  }
})
