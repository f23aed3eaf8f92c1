// Pure: the claims of a JWT that the page shows (whose token, until when). Never verifies:
// the server does that.

export interface TokenClaims {
  readonly sub: string
  readonly exp: number | null
}

function base64UrlDecode (part: string): string {
  const padded = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=')
  const binary = atob(padded)
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0))
  return new TextDecoder().decode(bytes)
}

export function readClaims (token: string): TokenClaims | null {
  const parts = token.trim().split('.')
  if (parts.length !== 3) return null
  try {
    const claims: unknown = JSON.parse(base64UrlDecode(parts[1] ?? ''))
    if (typeof claims !== 'object' || claims === null) return null
    const { sub, exp } = claims as { sub?: unknown, exp?: unknown }
    if (typeof sub !== 'string' || sub === '') return null
    return { sub, exp: typeof exp === 'number' ? exp : null }
  } catch {
    return null
  }
}

/** Seconds until the token expires (negative once it has), or null without `exp`. */
export function secondsLeft (claims: TokenClaims, nowMs: number): number | null {
  return claims.exp === null ? null : claims.exp - nowMs / 1000
}
