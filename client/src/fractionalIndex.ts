/**
 * Fractional index keys, exactly as the server makes them (crdt/fractional_index.py).
 *
 * A key is a non-empty string over the base-62 alphabet `0-9A-Za-z`, in ascending ASCII order,
 * so keys compare with plain string comparison. `keyBetween` picks the digit midpoint of the
 * two bounds and only grows the key when the bounds are adjacent; keys never end in `0`.
 * The committed vectors in test/vectors/fractional_index.json pin both implementations.
 */

export const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
const BASE = DIGITS.length
const ZERO = '0'

function digitValue (digit: string): number {
  return DIGITS.indexOf(digit)
}

/** True for a non-empty string made only of base-62 digits. */
export function isValidKey (key: unknown): key is string {
  if (typeof key !== 'string' || key === '') return false
  for (const c of key) {
    if (digitValue(c) < 0) return false
  }
  return true
}

/** Thrown when no key can be made from the given bounds (bad key, wrong order, no room). */
export class FractionalIndexError extends Error {
  override name = 'FractionalIndexError'
}

/**
 * A key `k` with `a < k < b` in plain string order (`null` is an open end).
 * Throws `FractionalIndexError` if a bound is not a valid key, if `a >= b`, or if no key fits.
 */
export function keyBetween (a: string | null, b: string | null): string {
  for (const bound of [a, b]) {
    if (bound !== null && !isValidKey(bound)) {
      throw new FractionalIndexError(`not a fractional index key: ${JSON.stringify(bound)}`)
    }
  }
  if (a !== null && b !== null && a >= b) {
    throw new FractionalIndexError(`lower bound ${JSON.stringify(a)} is not below upper bound ${JSON.stringify(b)}`)
  }
  const key = midpoint(a ?? '', b)
  if ((a !== null && !(a < key)) || (b !== null && !(key < b))) {
    throw new FractionalIndexError(`no key between ${JSON.stringify(a)} and ${JSON.stringify(b)}`)
  }
  return key
}

/** `n` ascending keys spread evenly over the key space, for renumbering a whole list. */
export function spreadKeys (n: number): string[] {
  if (!Number.isInteger(n) || n < 0) {
    throw new FractionalIndexError(`cannot make ${n} keys`)
  }
  const base = BigInt(BASE)
  const count = BigInt(n)
  let width = 1
  while (base ** BigInt(width) <= count) width += 1
  const step = base ** BigInt(width) / (count + 1n)
  const keys: string[] = []
  for (let i = 1n; i <= count; i += 1n) {
    keys.push(stripZeros(toDigits(i * step, width)))
  }
  return keys
}

function toDigits (value: bigint, width: number): string {
  const base = BigInt(BASE)
  let rest = value
  let out = ''
  for (let i = 0; i < width; i += 1) {
    out = DIGITS.charAt(Number(rest % base)) + out
    rest /= base
  }
  return out
}

function stripZeros (key: string): string {
  let end = key.length
  while (end > 0 && key.charAt(end - 1) === ZERO) end -= 1
  return key.slice(0, end)
}

/** Digit-wise midpoint of `a` (right-padded with zeros) and `b` (`null` = 1.0). */
function midpoint (lower: string, upper: string | null): string {
  let a = lower
  let b = upper
  let out = ''
  for (;;) {
    if (b !== null) {
      // Copy the common prefix; a missing digit of `a` counts as zero.
      let n = 0
      while (n < b.length && (n < a.length ? a.charAt(n) : ZERO) === b.charAt(n)) n += 1
      if (n === b.length) throw new FractionalIndexError('no key fits below the upper bound')
      out += b.slice(0, n)
      a = a.slice(n)
      b = b.slice(n)
    }
    const low = a !== '' ? digitValue(a.charAt(0)) : 0
    const high = b !== null ? digitValue(b.charAt(0)) : BASE
    if (high - low > 1) {
      return out + DIGITS.charAt(Math.floor((low + high + 1) / 2))
    }
    if (b !== null && b.length > 1) {
      // Adjacent first digits but `b` continues: its first digit alone is below `b`.
      return out + b.charAt(0)
    }
    // Adjacent digits and nothing left in `b`: keep `a`'s digit and go one level deeper.
    out += DIGITS.charAt(low)
    a = a.slice(1)
    b = null
  }
}
