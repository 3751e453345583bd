#!/usr/bin/env node
// Parses Mermaid diagrams with Mermaid's own parser (the real grammar, not a
// regex), under a jsdom window.
//
//   node parse.mjs FILE_OR_DIR...   check every .mmd file, and every ```mermaid
//                                   block of every .md file, given or found
//                                   (directories are searched recursively)
//   node parse.mjs --self-test      check that good diagrams pass and broken
//                                   ones fail, so a parser that accepts
//                                   anything cannot pass for a working one
//
// Prints one line per diagram on stdout:
//   ok <file>[#block N] <diagramType>
//   FAIL <file>[#block N]: <parser message, on one line>
// and the parser's full message (with its caret under the error) on stderr.
// Exits 1 if any diagram failed or none was found, 2 on a usage error.

import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

// Mermaid sanitizes labels with DOMPurify, which builds itself from the global
// `window` when it is first imported: without a DOM, `DOMPurify.addHook` does
// not exist and every flowchart, class or state diagram fails with "not a
// function". So the window must exist before mermaid is imported, hence the
// dynamic import below.
const { JSDOM } = await import('jsdom');
const dom = new JSDOM('<!DOCTYPE html><html><body></body></html>', {
  pretendToBeVisual: true,
});
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' });

// Directories never searched: dependencies, VCS and tool state, Cargo output.
const SKIP_DIRS = new Set(['node_modules', 'target']);

function usage() {
  process.stderr.write('usage: node parse.mjs FILE_OR_DIR...\n       node parse.mjs --self-test\n');
  process.exit(2);
}

/** Parses one diagram; never throws. */
async function parseOne(text) {
  try {
    const result = await mermaid.parse(text);
    // parse() returns false only with suppressErrors, which is not set; treat
    // it as a failure all the same rather than trusting it.
    if (!result || !result.diagramType) {
      return { ok: false, message: 'mermaid.parse returned no diagram type' };
    }
    return { ok: true, diagramType: result.diagramType };
  } catch (err) {
    const message = (err && (err.message || err.str)) || String(err);
    return { ok: false, message };
  }
}

/**
 * The ```mermaid (or ~~~mermaid) fenced blocks of a Markdown text, following
 * CommonMark's fence rules: the closing fence uses the same character, is at
 * least as long as the opening one and carries nothing else; a block left
 * open runs to the end of the document. Indentation before the opening fence
 * is removed from the block's lines too, so blocks inside list items work.
 */
export function mermaidBlocks(markdown) {
  const lines = markdown.split(/\r?\n/);
  const blocks = [];
  let open = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (!open) {
      const m = /^(\s*)(`{3,}|~{3,})(.*)$/.exec(line);
      if (!m) continue;
      const [, indent, fence, info] = m;
      if (fence[0] === '`' && info.includes('`')) continue; // not a fence
      const lang = info.trim().split(/\s+/)[0].replace(/^\{?\.?/, '').replace(/\}$/, '');
      open = { indent: indent.length, fence, mermaid: lang.toLowerCase() === 'mermaid', start: i + 1, body: [] };
      continue;
    }
    const close = /^\s*(`{3,}|~{3,})\s*$/.exec(line);
    if (close && close[1][0] === open.fence[0] && close[1].length >= open.fence.length) {
      if (open.mermaid) blocks.push({ line: open.start, text: open.body.join('\n') });
      open = null;
      continue;
    }
    const strip = Math.min(open.indent, /^\s*/.exec(line)[0].length);
    open.body.push(line.slice(strip));
  }
  if (open && open.mermaid) blocks.push({ line: open.start, text: open.body.join('\n') });
  return blocks;
}

function kindOf(file) {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.mmd' || ext === '.mermaid') return 'mmd';
  if (ext === '.md' || ext === '.markdown') return 'md';
  return null;
}

/** Files to check under `p`, sorted so the output is stable. */
async function collect(p, explicit) {
  let st;
  try {
    st = await stat(p);
  } catch {
    return { files: [], errors: [`${p}: no such file or directory`] };
  }
  if (st.isFile()) {
    if (kindOf(p)) return { files: [p], errors: [] };
    // A file named on the command line must be one we can check; one found
    // in a directory is just skipped.
    return explicit ? { files: [], errors: [`${p}: not a .mmd or .md file`] } : { files: [], errors: [] };
  }
  if (!st.isDirectory()) return { files: [], errors: [] };
  const files = [];
  const errors = [];
  const entries = (await readdir(p, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    const child = path.join(p, e.name);
    if (e.isDirectory()) {
      if (e.name.startsWith('.') || SKIP_DIRS.has(e.name)) continue;
      const sub = await collect(child, false);
      files.push(...sub.files);
      errors.push(...sub.errors);
    } else if (e.isFile() && kindOf(e.name)) {
      files.push(child);
    }
  }
  return { files, errors };
}

function oneLine(message) {
  return message.split(/\r?\n/).map((l) => l.trim()).filter(Boolean).join(' | ');
}

function report(label, res, detailPrefix = '') {
  if (res.ok) {
    process.stdout.write(`ok ${label} ${res.diagramType}\n`);
  } else {
    process.stdout.write(`FAIL ${label}: ${detailPrefix}${oneLine(res.message)}\n`);
    process.stderr.write(`--- ${label}\n${res.message.replace(/^/gm, '    ')}\n`);
  }
}

async function checkPaths(args) {
  let found = 0;
  let passed = 0;
  let failed = 0;
  const seen = new Set();
  for (const arg of args) {
    const { files, errors } = await collect(arg, true);
    for (const err of errors) {
      process.stdout.write(`FAIL ${err}\n`);
      failed++;
    }
    for (const file of files) {
      const key = path.resolve(file);
      if (seen.has(key)) continue;
      seen.add(key);
      const text = await readFile(file, 'utf8');
      if (kindOf(file) === 'mmd') {
        found++;
        const res = await parseOne(text);
        if (res.ok) passed++;
        else failed++;
        report(file, res);
      } else {
        const blocks = mermaidBlocks(text);
        for (let n = 0; n < blocks.length; n++) {
          found++;
          const res = await parseOne(blocks[n].text);
          if (res.ok) passed++;
          else failed++;
          // Mermaid's line numbers count from the block; say where it starts.
          report(`${file}#block ${n + 1}`, res, `(block opens on line ${blocks[n].line}) `);
        }
      }
    }
  }
  if (found === 0) {
    process.stdout.write('FAIL no Mermaid diagram found in: ' + args.join(' ') + '\n');
    failed++;
  }
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  return failed > 0 ? 1 : 0;
}

// --- self-test ---------------------------------------------------------------

const GOOD = {
  'flowchart with subgraphs, edges and shapes': `flowchart LR
  %% a comment line
  subgraph region_a [Region A]
    direction TB
    lb[/Load balancer/] --> app1[[App 1]]
    lb --> app2[[App 2]]
  end
  subgraph data [Data]
    pg[(Postgres primary)]
    pgr[(Postgres replica)]
    redis{{Redis}}
    bouncer((PgBouncer))
  end
  app1 -->|SQL| bouncer
  app2 -.-> redis
  bouncer ==> pg
  pg -. WAL .-> pgr
  A-->|label|B
  A-.->B
  A==>B
  C{decision} --> D>flag]
  classDef db fill:#f96,stroke:#333,stroke-width:2px
  class pg,pgr db
`,
  'flowchart with style, classDef, class, linkStyle and comments': `flowchart TD
  %% comments are ignored
  A[Client] --> B[Server]
  B --> C[(DB)]
  style A fill:#bbf,stroke:#f66,stroke-width:2px,color:#fff
  classDef cls fill:#f96
  class A,B cls
  linkStyle 0 stroke:#f00,stroke-width:2px
  linkStyle default stroke:#999
  %% trailing comment
`,
  'graph keyword and quoted labels with markup': `graph TB
  a["Primary <b>(eu-west-1)</b>"] --> b["Replica #quot;2#quot;"]
  click a "https://example.invalid" "tooltip"
`,
  'sequence diagram': `sequenceDiagram
  participant C as Client
  C->>+S: GET /health
  S-->>-C: 200 OK
  Note over C,S: round trip
`,
  'state diagram': `stateDiagram-v2
  [*] --> Launch
  Launch --> Growth: users > 10k
  Growth --> [*]
`,
  'class diagram': `classDiagram
  class Region {
    +String name
    +int replicas()
  }
  Region <|-- Primary
`,
  'er diagram': `erDiagram
  USER ||--o{ ORDER : places
`,
  'gantt': `gantt
  dateFormat YYYY-MM-DD
  title Phases
  section Rollout
  Launch :a1, 2025-01-01, 30d
  Growth :after a1, 60d
`,
};

const BAD = {
  'edge with no target': 'flowchart LR\n A-->',
  'unclosed subgraph': 'flowchart LR\n subgraph one\n  A-->B\n',
  'unclosed node shape': 'flowchart LR\n A[unclosed\n',
  'unclosed cylinder': 'flowchart LR\n A[(db) --> B\n',
  'stray closing end': 'flowchart LR\n A-->B\n end\n',
  'no diagram type': 'A-->B\n',
  'misspelt diagram type': 'flowchrt LR\n A-->B\n',
  'empty input': '',
  'sequence arrow with no target': 'sequenceDiagram\n A->>: hi\n',
  'unclosed class body': 'classDiagram\n class A {\n  +int x\n',
};

const MD_SAMPLE = [
  '# doc',
  '```mermaid',
  'flowchart LR',
  '  A --> B',
  '```',
  '',
  '````markdown',
  '```mermaid',
  'not a diagram: this fence is inside a markdown block',
  '```',
  '````',
  '',
  '- item',
  '  ~~~ mermaid',
  '  sequenceDiagram',
  '    A->>B: hi',
  '  ~~~',
  '```js',
  'const x = 1;',
  '```',
].join('\n');

async function selfTest() {
  let bad = 0;
  for (const [name, text] of Object.entries(GOOD)) {
    const res = await parseOne(text);
    if (res.ok) {
      process.stdout.write(`ok good: ${name} -> ${res.diagramType}\n`);
    } else {
      bad++;
      process.stdout.write(`FAIL good: ${name} was rejected: ${oneLine(res.message)}\n`);
    }
  }
  for (const [name, text] of Object.entries(BAD)) {
    const res = await parseOne(text);
    if (res.ok) {
      bad++;
      process.stdout.write(`FAIL bad: ${name} was accepted as ${res.diagramType}\n`);
    } else {
      process.stdout.write(`ok bad: ${name} -> rejected: ${oneLine(res.message).slice(0, 100)}\n`);
    }
  }
  const blocks = mermaidBlocks(MD_SAMPLE);
  const got = JSON.stringify(blocks);
  const want = JSON.stringify([
    { line: 2, text: 'flowchart LR\n  A --> B' },
    { line: 14, text: 'sequenceDiagram\n  A->>B: hi' },
  ]);
  if (got === want) {
    process.stdout.write('ok markdown: ```mermaid blocks extracted\n');
  } else {
    bad++;
    process.stdout.write(`FAIL markdown: extracted ${got}, wanted ${want}\n`);
  }
  const total = Object.keys(GOOD).length + Object.keys(BAD).length + 1;
  process.stdout.write(`self-test: ${total - bad} passed, ${bad} failed\n`);
  return bad > 0 ? 1 : 0;
}

// --- main --------------------------------------------------------------------

const args = process.argv.slice(2);
if (args.length === 0 || args.includes('-h') || args.includes('--help')) usage();
let code;
if (args[0] === '--self-test') {
  if (args.length !== 1) usage();
  code = await selfTest();
} else {
  if (args.some((a) => a.startsWith('--'))) usage();
  code = await checkPaths(args);
}
// jsdom keeps timers alive; close it so the process ends on its own.
dom.window.close();
process.exitCode = code;
