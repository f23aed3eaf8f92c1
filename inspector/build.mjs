// Builds the inspector page into ../server/static/inspector/ (committed; served by flowai serve).
//   node build.mjs            write the page's assets
//   node build.mjs --check    build into a temporary folder; fail if the committed assets differ
//   node build.mjs --tests    bundle src/test/*.test.ts into .test-build/ for `node --test`
import { build } from 'esbuild'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const committed = resolve(here, '../server/static/inspector')

// One copy of Yjs and its helpers in the bundle: the SDK's imports of them resolve to this
// package's own copies (two Yjs instances break `instanceof` checks and the document).
const SHARED = /^(yjs|y-websocket|y-protocols|lib0)(\/.*)?$/
const dedupe = {
  name: 'dedupe-yjs',
  setup (b) {
    b.onResolve({ filter: SHARED }, (args) => {
      if (args.resolveDir === here) return undefined
      return b.resolve(args.path, { kind: args.kind, resolveDir: here })
    })
  }
}

// The SDK is bundled from its TypeScript source (client/src, linked as @flowai/client): its
// package ships only a tsc build that is not committed, and esbuild reads TypeScript itself.
const sdkSource = {
  name: 'sdk-source',
  setup (b) {
    b.onResolve({ filter: /^@flowai\/client$/ }, () => ({
      path: join(here, 'node_modules/@flowai/client/src/index.ts')
    }))
  }
}

const common = {
  bundle: true,
  format: 'esm',
  target: 'es2022',
  platform: 'browser',
  plugins: [sdkSource, dedupe],
  logLevel: 'warning',
  legalComments: 'eof'
}

async function buildPage (outdir) {
  mkdirSync(outdir, { recursive: true })
  await build({
    ...common,
    entryPoints: { inspector: join(here, 'src/main.ts') },
    outdir,
    minify: true,
    sourcemap: false
  })
  copyFileSync(join(here, 'src/index.html'), join(outdir, 'index.html'))
  copyFileSync(join(here, 'src/inspector.css'), join(outdir, 'inspector.css'))
}

async function buildTests () {
  const outdir = join(here, '.test-build')
  rmSync(outdir, { recursive: true, force: true })
  const entries = readdirSync(join(here, 'src/test')).filter((f) => f.endsWith('.test.ts'))
  await build({
    ...common,
    platform: 'node',
    entryPoints: entries.map((f) => join(here, 'src/test', f)),
    outdir,
    outExtension: { '.js': '.mjs' },
    external: ['node:*']
  })
}

const mode = process.argv[2] ?? ''
if (mode === '--tests') {
  await buildTests()
} else if (mode === '--check') {
  const outdir = mkdtempSync(join(tmpdir(), 'inspector-'))
  try {
    await buildPage(outdir)
    const stale = readdirSync(outdir).filter((name) => {
      let old
      try { old = readFileSync(join(committed, name)) } catch { return true }
      return !old.equals(readFileSync(join(outdir, name)))
    })
    const extra = readdirSync(committed).filter((name) => !readdirSync(outdir).includes(name))
    if (stale.length + extra.length > 0) {
      console.error(`server/static/inspector is not what inspector/ builds: ${[...stale, ...extra].join(', ')}; run npm run build in inspector/`)
      process.exit(1)
    }
    console.log('server/static/inspector is up to date')
  } finally {
    rmSync(outdir, { recursive: true, force: true })
  }
} else if (mode === '') {
  rmSync(committed, { recursive: true, force: true })
  await buildPage(committed)
} else {
  console.error(`unknown option ${mode}`)
  process.exit(2)
}
