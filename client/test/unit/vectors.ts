import { readFileSync } from 'node:fs'

/** A JSON file under client/test/vectors (read from the compiled test's location). */
export function readVectors<T> (name: string): T {
  return JSON.parse(readFileSync(new URL(`../../../test/vectors/${name}`, import.meta.url), 'utf8')) as T
}
