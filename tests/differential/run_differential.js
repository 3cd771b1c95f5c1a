#!/usr/bin/env node
// Differential test: the same WebAssembly modules under moat (`moat run`, wasm2c + cc) and
// under Node's V8, compared module by module.
//
//   node tests/differential/run_differential.js MOAT WORKDIR [--wat2wasm PATH] [--filter RE]
//
// ctest runs it as `differential_test` (label e2e); alone: `ctest --test-dir build -R
// differential`. MOAT_CACHE_DIR comes from the environment; MOAT_DIFF_JOBS sets how many
// moat processes run at once (default 2).
//
// The corpus: generate.js emits most modules systematically (every integer, float and
// conversion operator on edge operands, with constant and loaded operands; every load and
// store width at the end of memory; br_table), and wat/*.wat holds hand-written structured
// cases (bulk memory, tables, control, globals, start, invalid modules). A .wat file's header
// lines name its area (`;; area: NAME`), what V8 must do with it (`;; expect: exit`,
// `trap` or `invalid`), extra wat2wasm flags (`;; wat2wasm: FLAGS`) and, for a module
// that ends before _start prints, why it prints nothing (`;; silent: REASON`); a line `;;@print`
// right after `(module` is replaced by the shared printing helper (imports and functions).
//
// Each module is a WASI command module that prints its results through fd_write. The V8
// side gets a minimal host written here (no node:wasi, whose flags differ between Node
// versions): fd_write appends to stdout or stderr, proc_exit throws an exit marker. Per
// module the runner compares stdout bytes, how the run ended (exit code, trap class, or
// refused as invalid), and fails on any difference.
//
// Trap classes are moat's trap kinds. V8's messages map onto them as listed in V8_TRAPS;
// one spec trap is named differently by the two: call_indirect with an index past the table
// (spec "undefined element") is "table index is out of bounds" in V8 and `indirect_call` in
// moat (like a null entry or a signature mismatch), so a V8 "table index" trap raised by a
// call_indirect instruction counts as indirect_call. And V8 has one message for both traps of
// a float-to-integer truncation (NaN, out of range), which moat names apart.
//
// The corpus checks itself too: V8 must end each module as its `expect` says and print
// something first, and every area must have at least MIN_MODULES modules, so a broken
// generator or printing helper fails instead of passing on empty outputs.
'use strict';

const fs = require('fs');
const path = require('path');
const { spawn, execFileSync } = require('child_process');
const { generate, PRELUDE } = require('./generate.js');

// Modules each area has: fewer means the generator or a wat/ file went missing. Raise these
// when adding cases.
const MIN_MODULES = { integer: 152, float: 92, conversion: 80, memory: 104, table: 24, control: 18,
  global: 7, host: 1, invalid: 4 };

// Cases where moat and V8 are known to differ, each with its reason. A listed case that
// differs is reported but does not fail the test; one that agrees again is reported so its
// entry can be removed.
const KNOWN_DIFFERENCES = {
  // Not a translation error: both engines end the run for exhausting a resource, which the
  // spec leaves to the implementation. The C compiler turns this self-recursion (result + 1)
  // into a loop, so moat never exhausts its stack and the run ends on its fuel limit
  // (fuel_exhausted), while V8 traps with stack exhaustion. Recursion it cannot turn into a
  // loop (control_recursion_exhausted_frames) traps stack_exhausted on both.
  'control_recursion_exhausted': 'moat: fuel_exhausted (a resource limit) instead of a stack_exhausted trap',
};

// V8 RuntimeError messages (without the "WebAssembly.Instance(): " prefix of traps while
// instantiating) -> moat trap kind. Patterns, not exact strings: the wording of segment
// traps has changed between V8 versions (Node 18 and 20 both run this).
const V8_TRAPS = [
  [/^memory access out of bounds$/, 'out_of_bounds'],
  [/^(data|element) segment (is )?out of bounds$|^table initializer is out of bounds$/, 'out_of_bounds'],
  [/^(data|element) segment has been dropped$/, 'out_of_bounds'],
  [/^table (index|access) is out of bounds$/, 'out_of_bounds'],  // call_indirect: see trapClass()
  [/^(divide|remainder) by zero$/, 'integer_divide_by_zero'],
  [/^divide result unrepresentable$/, 'integer_overflow'],
  // The spec names two traps here: "invalid conversion to integer" for NaN and "integer
  // overflow" for a value out of range (moat: invalid_conversion, integer_overflow); V8 has
  // one message for both, so either of moat's kinds matches it.
  [/^float unrepresentable in integer range$/, 'invalid_conversion|integer_overflow'],
  [/^unreachable( executed)?$/, 'unreachable'],
  [/^(null function or function signature mismatch|null function|function signature mismatch)$/, 'indirect_call'],
];
const OP_CALL_INDIRECT = 0x11;

function usage(msg) {
  process.stderr.write(`differential: ${msg}\nusage: run_differential.js MOAT WORKDIR [--wat2wasm PATH] [--filter RE]\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { wat2wasm: 'wat2wasm', filter: null, pos: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--wat2wasm') opts.wat2wasm = argv[++i];
    else if (argv[i] === '--filter') opts.filter = new RegExp(argv[++i]);
    else if (argv[i].startsWith('--')) usage(`unknown option ${argv[i]}`);
    else opts.pos.push(argv[i]);
  }
  if (opts.pos.length !== 2) usage('need MOAT and WORKDIR');
  [opts.moat, opts.work] = opts.pos.map((p) => path.resolve(p));
  if (!fs.existsSync(opts.moat)) usage(`no moat binary at ${opts.moat}`);
  return opts;
}

// Hand-written cases: wat/*.wat with their header lines.
function handWritten(dir) {
  const cases = [];
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.wat')).sort()) {
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    const header = (key) => { const m = new RegExp(`^;; ${key}: (.*)$`, 'm').exec(text); return m ? m[1].trim() : null; };
    const area = header('area');
    const expect = header('expect');
    if (!area || !['exit', 'trap', 'invalid'].includes(expect)) {
      throw new Error(`${file}: needs ';; area: NAME' and ';; expect: exit|trap|invalid'`);
    }
    if (!text.includes(';;@print')) throw new Error(`${file}: no ;;@print line`);
    cases.push({ area, expect, silent: header('silent') !== null, name: file.replace(/\.wat$/, ''), flags: (header('wat2wasm') || '').split(/\s+/).filter(Boolean),
      wat: text.replace(';;@print', PRELUDE) });
  }
  return cases;
}

class ExitMarker {
  constructor(code) { this.code = code; }
}

function trapClass(message, stack, bytes) {
  const msg = message.replace(/^WebAssembly\.\w+\(\): /, '');
  const hit = V8_TRAPS.find(([re]) => re.test(msg));
  if (!hit) return `v8:${msg}`;
  let cls = hit[1];
  if (/^table (index|access) is out of bounds$/.test(msg)) {
    const m = /wasm-function\[\d+\]:0x([0-9a-f]+)/.exec(stack || '');
    if (m && bytes[parseInt(m[1], 16)] === OP_CALL_INDIRECT) cls = 'indirect_call';
  }
  return cls;
}

function runV8(bytes) {
  let mod;
  try {
    mod = new WebAssembly.Module(bytes);
  } catch (e) {
    return { end: 'invalid', stdout: Buffer.alloc(0), detail: e.message };
  }
  const out = { 1: [], 2: [] };
  let instance = null;
  const memory = () => {
    if (!instance) throw new Error('host call before the instance exists (start function?)');
    return instance.exports.memory.buffer;
  };
  const wasi = {
    fd_write(fd, iovs, count, nwrittenPtr) {
      const buf = memory();
      const view = new DataView(buf);
      if (fd !== 1 && fd !== 2) return 8;  // EBADF
      let total = 0;
      for (let i = 0; i < count; i++) {
        const base = (iovs >>> 0) + 8 * i;
        if (base + 8 > buf.byteLength) return 21;  // EFAULT
        const ptr = view.getUint32(base, true);
        const len = view.getUint32(base + 4, true);
        if (ptr + len > buf.byteLength) return 21;
        out[fd].push(Buffer.from(new Uint8Array(buf, ptr, len)));
        total += len;
      }
      if ((nwrittenPtr >>> 0) + 4 > buf.byteLength) return 21;
      view.setUint32(nwrittenPtr >>> 0, total, true);
      return 0;
    },
    proc_exit(code) {
      throw new ExitMarker(code >>> 0);
    },
  };
  let end;
  try {
    instance = new WebAssembly.Instance(mod, { wasi_snapshot_preview1: wasi });
    instance.exports._start();
    end = 'exit:0';
  } catch (e) {
    if (e instanceof ExitMarker) end = `exit:${e.code}`;
    else if (e instanceof WebAssembly.RuntimeError) end = `trap:${trapClass(e.message, e.stack, bytes)}`;
    else if (e instanceof RangeError && /Maximum call stack size exceeded/.test(e.message)) end = 'trap:stack_exhausted';
    else if (e instanceof WebAssembly.LinkError) end = `link_error:${e.message}`;
    else end = `host_error:${e && e.message}`;
  }
  return { end, stdout: Buffer.concat(out[1]) };
}

function runMoat(opts, wasm, report) {
  return new Promise((resolve) => {
    try { fs.unlinkSync(report); } catch (e) { /* not there yet */ }
    const child = spawn(opts.moat, ['run', '--timeout', '60s', '--report', 'json', '--report-file', report, wasm],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout = [];
    const stderr = [];
    child.stdout.on('data', (d) => stdout.push(d));
    child.stderr.on('data', (d) => stderr.push(d));
    child.on('error', (e) => resolve({ end: `spawn_error:${e.message}`, stdout: Buffer.alloc(0) }));
    child.on('close', (status, signal) => {
      const res = { stdout: Buffer.concat(stdout) };
      let rep = null;
      try { rep = JSON.parse(fs.readFileSync(report, 'utf8')); } catch (e) { /* judged below */ }
      if (!rep) res.end = `no_report:status=${status}${signal ? ` signal=${signal}` : ''}:${Buffer.concat(stderr).toString().trim().slice(0, 200)}`;
      else if (rep.status === 'ok') res.end = `exit:${rep.exit_code >>> 0}`;
      else if (rep.status === 'trap') res.end = `trap:${rep.trap && rep.trap.kind}`;
      else if (rep.status === 'invalid_module') { res.end = 'invalid'; res.detail = rep.message; }
      else res.end = `${rep.status}:${rep.message}`;
      resolve(res);
    });
  });
}

// A V8 trap class may list several moat kinds ("a|b"): V8 names some spec traps alike.
function endsAgree(v8, moat) {
  if (v8 === moat) return true;
  const [vk, vc] = [v8.slice(0, v8.indexOf(':')), v8.slice(v8.indexOf(':') + 1)];
  return vk === 'trap' && moat.startsWith('trap:') && vc.split('|').includes(moat.slice(5));
}

async function pool(items, jobs, fn) {
  let next = 0;
  const worker = async () => { while (next < items.length) { const i = next++; await fn(items[i], i); } };
  await Promise.all(Array.from({ length: Math.min(jobs, items.length) }, worker));
}

// The first line where the two outputs differ, both sides, trimmed.
function firstDifference(a, b) {
  const la = a.toString('latin1').split('\n');
  const lb = b.toString('latin1').split('\n');
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) {
      const show = (s) => (s === undefined ? '<end>' : JSON.stringify(s.slice(0, 80)));
      return `stdout line ${i + 1}: v8 ${show(la[i])} moat ${show(lb[i])} (${la.length} vs ${lb.length} lines)`;
    }
  }
  return 'stdout differs';
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  let cases = generate().map((c) => ({ ...c, flags: [] })).concat(handWritten(path.join(__dirname, 'wat')));
  const names = new Set();
  for (const c of cases) {
    if (names.has(c.name)) throw new Error(`duplicate module name ${c.name}`);
    names.add(c.name);
  }
  const problems = [];
  if (!opts.filter) {
    const perArea = {};
    for (const c of cases) perArea[c.area] = (perArea[c.area] || 0) + 1;
    for (const [area, min] of Object.entries(MIN_MODULES)) {
      if ((perArea[area] || 0) < min) problems.push(`corpus: area ${area} has ${perArea[area] || 0} modules, expected at least ${min}`);
    }
    console.log(`differential: areas ${Object.entries(perArea).map(([a, n]) => `${a} ${n}`).join(', ')}`);
  } else {
    cases = cases.filter((c) => opts.filter.test(c.name));
  }
  for (const name of Object.keys(KNOWN_DIFFERENCES)) {
    if (!names.has(name)) problems.push(`corpus: known difference ${name} names no module`);
  }

  fs.rmSync(opts.work, { recursive: true, force: true });
  fs.mkdirSync(opts.work, { recursive: true });
  for (const c of cases) {
    c.watFile = path.join(opts.work, `${c.name}.wat`);
    c.wasmFile = path.join(opts.work, `${c.name}.wasm`);
    fs.writeFileSync(c.watFile, c.wat);
    try {
      execFileSync(opts.wat2wasm, [...c.flags, c.watFile, '-o', c.wasmFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      problems.push(`corpus: ${c.name}: wat2wasm failed: ${(e.stderr || e.message).toString().trim().split('\n').slice(0, 3).join(' / ')}`);
      c.broken = true;
    }
  }
  const runnable = cases.filter((c) => !c.broken);
  for (const c of runnable) c.v8 = runV8(fs.readFileSync(c.wasmFile));

  const jobs = Math.max(1, parseInt(process.env.MOAT_DIFF_JOBS || '2', 10) || 2);
  await pool(runnable, jobs, async (c) => { c.moat = await runMoat(opts, c.wasmFile, `${c.wasmFile}.report.json`); });

  let differ = 0;
  let known = 0;
  let ran = 0;
  for (const c of runnable) {
    if (!c.moat) continue;
    ran++;
    const v8 = c.v8;
    const moat = c.moat;
    const v8Kind = v8.end.split(':')[0];
    if (v8Kind !== c.expect) problems.push(`corpus: ${c.name}: meant to end as ${c.expect}, V8 ended it as ${v8.end}`);
    else if (!c.silent && v8.stdout.length === 0) problems.push(`corpus: ${c.name}: V8 printed nothing`);
    const same = endsAgree(v8.end, moat.end) && v8.stdout.equals(moat.stdout);
    const reason = KNOWN_DIFFERENCES[c.name];
    if (same) {
      if (reason) console.log(`NOTE ${c.name}: listed as a known difference but agrees now; remove it from KNOWN_DIFFERENCES`);
      continue;
    }
    const what = [];
    if (!endsAgree(v8.end, moat.end)) what.push(`end: v8 ${v8.end}${v8.detail ? ` (${v8.detail.slice(0, 100)})` : ''} | moat ${moat.end}${moat.detail ? ` (${moat.detail.slice(0, 100)})` : ''}`);
    if (!v8.stdout.equals(moat.stdout)) what.push(firstDifference(v8.stdout, moat.stdout));
    if (reason) {
      known++;
      console.log(`KNOWN ${c.name} (${reason}): ${what.join('; ')}`);
    } else {
      differ++;
      console.log(`DIFF ${c.name}: ${what.join('; ')}`);
    }
  }
  if (ran !== cases.length) problems.push(`only ${ran} of ${cases.length} modules ran`);
  for (const p of problems) console.log(`FAIL ${p}`);
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  const notes = [known ? `${known} known differences` : '', problems.length ? `${problems.length} corpus problems` : '']
    .filter(Boolean).join(', ');
  console.log(`differential: ${ran} modules, ${differ ? `${differ} differ` : 'all agree'}${notes ? `; ${notes}` : ''} (${secs} s)`);
  process.exit(differ || problems.length ? 1 : 0);
}

main().catch((e) => {
  console.log(`differential: runner error: ${e.stack || e}`);
  process.exit(1);
});
