#!/usr/bin/env node
// Type-checks k6 scripts with this folder's TypeScript and @types/k6.
//
//   node check.mjs FILE...      check the given scripts; exits with tsc's status
//                               (0 clean, non-zero on any error)
//   node check.mjs --self-test  selftest/good.js must be clean, and tsc must
//                               report an error on every line of
//                               selftest/bad.js marked `// error`
//
// It writes a temporary tsconfig that extends ./tsconfig.json with `files`
// set to the scripts (absolute paths), runs ./node_modules/.bin/tsc on it, and
// removes it.

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const TSC = path.join(HERE, 'node_modules', 'typescript', 'bin', 'tsc');
const BASE = path.join(HERE, 'tsconfig.json');

function die(message, code = 2) {
  process.stderr.write(`check.mjs: ${message}\n`);
  process.exit(code);
}

/** Runs tsc over `files`; returns its status and output. */
function tsc(files, { capture = false } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'k6-tsc-'));
  try {
    const config = path.join(dir, 'tsconfig.json');
    writeFileSync(config, JSON.stringify({ extends: BASE, files }, null, 2) + '\n');
    const res = spawnSync(process.execPath, [TSC, '-p', config], {
      cwd: process.cwd(),
      encoding: 'utf8',
      stdio: capture ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    });
    if (res.error) die(`cannot run tsc: ${res.error.message}`);
    if (res.signal) die(`tsc was killed by ${res.signal}`);
    return { status: res.status, output: (res.stdout || '') + (res.stderr || '') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * tsc infers the type of a plain `export const options = {...}` from the
 * object itself and checks it against nothing, so a misspelt executor or a
 * threshold that is not a list passes. Only a JSDoc type makes it checked;
 * say so when it is missing (a warning: the exit status stays tsc's).
 */
function warnUntypedOptions(file) {
  const lines = readFileSync(file, 'utf8').split('\n');
  const i = lines.findIndex((l) => /^export\s+(const|let|var)\s+options\b/.test(l));
  if (i < 0) return;
  const before = lines.slice(Math.max(0, i - 3), i + 1).join('\n');
  if (/@type\s*\{\s*import\(\s*['"]k6\/options['"]\s*\)\.Options\s*\}/.test(before)) return;
  process.stderr.write(
    `check.mjs: warning: ${path.relative(process.cwd(), file) || file}:${i + 1}: ` +
      '`options` has no JSDoc type, so tsc does not check it; put ' +
      "/** @type {import('k6/options').Options} */ on the line above\n",
  );
}

function selfTest() {
  // Check copies outside this folder, as the real scripts are: from inside
  // it, 'k6/http' would resolve through ./node_modules even if the tsconfig's
  // paths were wrong.
  const scratch = mkdtempSync(path.join(tmpdir(), 'k6-selftest-'));
  try {
    const good = path.join(scratch, 'good.js');
    const bad = path.join(scratch, 'bad.js');
    copyFileSync(path.join(HERE, 'selftest', 'good.js'), good);
    copyFileSync(path.join(HERE, 'selftest', 'bad.js'), bad);
    return selfTestOn(good, bad);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function selfTestOn(good, bad) {
  let failed = 0;

  const g = tsc([good], { capture: true });
  if (g.status === 0) {
    process.stdout.write('ok good.js type-checks clean\n');
  } else {
    failed++;
    process.stdout.write(`FAIL good.js: tsc exited ${g.status}\n${g.output}`);
  }

  const b = tsc([bad], { capture: true });
  const expected = readFileSync(bad, 'utf8')
    .split('\n')
    .flatMap((line, i) => (/\S.*\/\/ error:/.test(line) && !/^\s*\/\//.test(line) ? [i + 1] : []));
  const reported = new Set(
    [...b.output.matchAll(/bad\.js\((\d+),\d+\): error TS\d+/g)].map((m) => Number(m[1])),
  );
  if (b.status === 0) {
    failed++;
    process.stdout.write('FAIL bad.js: tsc exited 0\n');
  } else {
    process.stdout.write(`ok bad.js: tsc exited ${b.status}\n`);
  }
  for (const line of expected) {
    if (reported.has(line)) {
      process.stdout.write(`ok bad.js line ${line} reported\n`);
    } else {
      failed++;
      process.stdout.write(`FAIL bad.js line ${line} not reported\n`);
    }
  }
  // An error elsewhere (say, k6/http not found) means the setup is broken.
  const unexpected = [...reported].filter((line) => !expected.includes(line));
  if (unexpected.length) {
    failed++;
    process.stdout.write(`FAIL bad.js: errors on unmarked lines ${unexpected.join(', ')}\n`);
  } else {
    process.stdout.write('ok bad.js: no error on unmarked lines\n');
  }
  if (failed) process.stdout.write(b.output);
  const total = 3 + expected.length;
  process.stdout.write(`self-test: ${total - failed} passed, ${failed} failed\n`);
  return failed ? 1 : 0;
}

const args = process.argv.slice(2);
if (args.length === 0 || args.includes('-h') || args.includes('--help')) {
  die('usage: node check.mjs FILE...\n       node check.mjs --self-test');
}
if (!existsSync(TSC)) die(`${TSC} not found: run \`npm ci\` in ${HERE}`);

if (args[0] === '--self-test') {
  if (args.length !== 1) die('--self-test takes no files');
  process.exitCode = selfTest();
} else {
  const files = args.map((a) => path.resolve(a));
  for (const f of files) {
    if (!existsSync(f) || !statSync(f).isFile()) die(`${f}: no such file`);
  }
  for (const f of files) warnUntypedOptions(f);
  const { status } = tsc(files);
  process.exitCode = status;
}
