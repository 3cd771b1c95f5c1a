// Generates the systematic part of the differential corpus as WAT text (see
// run_differential.js for how each module is run and compared).
//
// Every module is a WASI command module: it imports only fd_write and proc_exit, exports
// `memory` and `_start`, and prints one line per case through the shared printing helper
// (PRELUDE). A module either runs all its cases and returns, or is a trap case: it prints
// "before" and then executes exactly one trapping instruction.
//
// Operands reach the instructions in two ways, and most areas are generated in both:
//   const: operands are wasm constants, so the C compiler behind moat may fold them;
//   mem:   operand pairs sit in a data segment and a loop loads them, so the operation
//          runs at run time.
// The generator decides only which cases would trap (to keep them out of the packed
// modules and give each its own module); it never computes expected results: those come
// from V8.
'use strict';

// Scratch memory of the printing helper: iovec at 512, nwritten at 520, text at 528..600.
// Corpus modules keep their own data at 1024 and above (or at the end of memory).
const PRELUDE = `
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (func $puts (param $p i32) (param $n i32)
    (i32.store (i32.const 512) (local.get $p))
    (i32.store (i32.const 516) (local.get $n))
    (drop (call $fd_write (i32.const 1) (i32.const 512) (i32.const 1) (i32.const 520))))
  (func $putc (param $c i32)
    (i32.store8 (i32.const 528) (local.get $c))
    (call $puts (i32.const 528) (i32.const 1)))
  (func $nl (call $putc (i32.const 10)))
  (func $sp (call $putc (i32.const 32)))
  (func $hexdigit (param $d i32) (result i32)
    (select (i32.add (local.get $d) (i32.const 48)) (i32.add (local.get $d) (i32.const 87))
            (i32.lt_u (local.get $d) (i32.const 10))))
  ;; hex of the low $n nibbles of $x, most significant first
  (func $hexn (param $x i64) (param $n i32) (local $i i32)
    (local.set $i (local.get $n))
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $i)))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (i32.store8 (i32.add (i32.const 528) (i32.sub (i32.sub (local.get $n) (i32.const 1)) (local.get $i)))
        (call $hexdigit (i32.wrap_i64 (i64.and (i64.shr_u (local.get $x)
          (i64.extend_i32_u (i32.shl (local.get $i) (i32.const 2)))) (i64.const 15)))))
      (br $next)))
    (call $puts (i32.const 528) (local.get $n)))
  (func $x32 (param $x i32) (call $hexn (i64.extend_i32_u (local.get $x)) (i32.const 8)))
  (func $x64 (param $x i64) (call $hexn (local.get $x) (i32.const 16)))
  ;; one result per line; "nan" for any NaN of an arithmetic op (its payload may differ)
  (func $p32 (param $x i32) (call $x32 (local.get $x)) (call $nl))
  (func $p64 (param $x i64) (call $x64 (local.get $x)) (call $nl))
  (func $pnan (call $putc (i32.const 110)) (call $putc (i32.const 97)) (call $putc (i32.const 110)) (call $nl))
  (func $pf32 (param $x f32)
    (if (f32.ne (local.get $x) (local.get $x)) (then (call $pnan) (return)))
    (call $p32 (i32.reinterpret_f32 (local.get $x))))
  (func $pf64 (param $x f64)
    (if (f64.ne (local.get $x) (local.get $x)) (then (call $pnan) (return)))
    (call $p64 (i64.reinterpret_f64 (local.get $x))))
  ;; exact bits, for operations the spec defines bit for bit (abs, neg, copysign, ...)
  (func $pb32 (param $x f32) (call $p32 (i32.reinterpret_f32 (local.get $x))))
  (func $pb64 (param $x f64) (call $p64 (i64.reinterpret_f64 (local.get $x))))
  ;; case label: 4 hex digits and a space
  (func $lbl (param $i i32) (call $hexn (i64.extend_i32_u (local.get $i)) (i32.const 4)) (call $sp))
  (func $say (param $p i32) (param $n i32) (call $puts (local.get $p) (local.get $n)) (call $nl))
  (func $before
    (i32.store (i32.const 528) (i32.const 0x6f666562)) ;; "befo"
    (i32.store (i32.const 532) (i32.const 0x000a6572)) ;; "re\\n"
    (call $puts (i32.const 528) (i32.const 7)))
`;

const M32 = (1n << 32n) - 1n;
const M64 = (1n << 64n) - 1n;
const u32 = (v) => BigInt.asUintN(32, BigInt(v));
const u64 = (v) => BigInt.asUintN(64, BigInt(v));
const hex = (v) => '0x' + v.toString(16);

// ---- operand sets ------------------------------------------------------------------------
const I32 = [0, 1, 2, -1, -2, 0x7fffffff, 0x80000000, 0x80000001, 0x7f, 0x80, 0xff, 0x100, 0x7fff,
  0x8000, 0xffff, 0x10000, 31, 32, 33, 63, 64, -31, -32, 0x55555555, 0xaaaaaaaa, 0x12345678].map(u32);
const I64 = [0n, 1n, 2n, -1n, -2n, (1n << 63n) - 1n, 1n << 63n, (1n << 63n) + 1n, 0x80n, 0xffn,
  0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, 63n, 64n, 65n, 127n, -63n, -64n,
  0x5555555555555555n, 0xaaaaaaaaaaaaaaaan, 0x123456789abcdef0n].map(u64);
// Smaller sets for the const mode (each case is code there).
const I32S = [0, 1, -1, 0x7fffffff, 0x80000000, 0x80, 0xff, 31, 32, 33, -1 >>> 0, -32, 0x12345678]
  .map(u32).filter((v, i, a) => a.indexOf(v) === i);
const I64S = [0n, 1n, -1n, (1n << 63n) - 1n, 1n << 63n, 0x80n, 0xffffffffn, 63n, 64n, 65n, -64n,
  0x123456789abcdef0n].map(u64);

// Floats as bit patterns.
const F32 = [0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x3f000000, 0xbfc00000, 0x40200000,
  0x7f7fffff, 0xff7fffff, 0x00800000, 0x00000001, 0x80000001, 0x7f800000, 0xff800000, 0x7fc00000,
  0xffc00000, 0x7fc00001, 0x7f800001, 0xffa00000, 0x3eaaaaab].map(u32);
const F64 = [0n, 1n << 63n, 0x3ff0000000000000n, 0xbff0000000000000n, 0x3fe0000000000000n,
  0xbff8000000000000n, 0x4004000000000000n, 0x7fefffffffffffffn, 0xffefffffffffffffn,
  0x0010000000000000n, 1n, 0x8000000000000001n, 0x7ff0000000000000n, 0xfff0000000000000n,
  0x7ff8000000000000n, 0xfff8000000000000n, 0x7ff8000000000001n, 0x7ff0000000000001n,
  0xfff4000000000000n, 0x3fd5555555555555n].map(u64);
// Extra values for unary ops and conversions: rounding ties, integer boundaries.
const f32bits = (x) => { const b = new DataView(new ArrayBuffer(4)); b.setFloat32(0, x); return u32(b.getUint32(0)); };
const f64bits = (x) => { const b = new DataView(new ArrayBuffer(8)); b.setFloat64(0, x); return b.getBigUint64(0); };
const f32val = (bits) => { const b = new DataView(new ArrayBuffer(4)); b.setUint32(0, Number(bits)); return b.getFloat32(0); };
const f64val = (bits) => { const b = new DataView(new ArrayBuffer(8)); b.setBigUint64(0, bits); return b.getFloat64(0); };
const EXTRA = [-0.5, 1.5, -2.5, 3.5, 0.49999997, 0.5000001, 4.5, -4.5, 8388607.5, 8388609, 2 ** 24 + 1,
  2 ** 31, -(2 ** 31), 2 ** 31 - 1, 2 ** 32, 2 ** 32 - 1, -(2 ** 31) - 1, 2 ** 63, -(2 ** 63), 2 ** 64,
  2 ** 53 + 1, 4503599627370495.5, -0.99, 1e10, -1e10, 2147483520, 2147483648 - 0.5,
  4294967295.5, 9223372036854774784, -9223372036854775808, 18446744073709549568, 1e-40, 1e300];
const F32U = F32.concat(EXTRA.map(f32bits)).filter((v, i, a) => a.indexOf(v) === i);
const F64U = F64.concat(EXTRA.map(f64bits)).filter((v, i, a) => a.indexOf(v) === i);

// ---- WAT literals ------------------------------------------------------------------------
function f32lit(bits) {
  const sign = bits >> 31n ? '-' : '';
  const exp = Number((bits >> 23n) & 0xffn);
  const man = bits & 0x7fffffn;
  if (exp === 255) return man === 0n ? `${sign}inf` : `${sign}nan:${hex(man)}`;
  const m = (man << 1n).toString(16).padStart(6, '0');
  return exp === 0 ? `${sign}0x0.${m}p-126` : `${sign}0x1.${m}p${exp - 127}`;
}
function f64lit(bits) {
  const sign = bits >> 63n ? '-' : '';
  const exp = Number((bits >> 52n) & 0x7ffn);
  const man = bits & ((1n << 52n) - 1n);
  if (exp === 2047) return man === 0n ? `${sign}inf` : `${sign}nan:${hex(man)}`;
  const m = man.toString(16).padStart(13, '0');
  return exp === 0 ? `${sign}0x0.${m}p-1022` : `${sign}0x1.${m}p${exp - 1023}`;
}
const TY = {
  i32: { w: 4, lit: (v) => `(i32.const ${hex(v)})`, load: 'i32.load', print: '$p32', bytes: (v) => le(v, 4) },
  i64: { w: 8, lit: (v) => `(i64.const ${hex(v)})`, load: 'i64.load', print: '$p64', bytes: (v) => le(v, 8) },
  f32: { w: 4, lit: (v) => `(f32.const ${f32lit(v)})`, load: 'f32.load', print: '$pf32', exact: '$pb32', bytes: (v) => le(v, 4) },
  f64: { w: 8, lit: (v) => `(f64.const ${f64lit(v)})`, load: 'f64.load', print: '$pf64', exact: '$pb64', bytes: (v) => le(v, 8) },
};
function le(v, n) {
  const out = [];
  let x = BigInt(v);
  for (let i = 0; i < n; i++) { out.push(Number(x & 0xffn)); x >>= 8n; }
  return out;
}
const watBytes = (bytes) => bytes.map((b) => '\\' + b.toString(16).padStart(2, '0')).join('');

function wasmModule(body, { memory = '(memory (export "memory") 1)', extra = '' } = {}) {
  return `(module\n${PRELUDE}\n  ${memory}\n${extra}\n${body}\n)\n`;
}

const DATA = 4096;  // where operand tables start in the mem mode

// A module applying `op` (operand types `tys`, result printer `print`) to every case.
// const mode: one call per case; mem mode: a loop over the cases in a data segment.
function packed(op, tys, print, cases, mode) {
  if (mode === 'const') {
    const lines = cases.map((c, i) =>
      `    (call $lbl (i32.const ${i})) (call ${print} (${op} ${c.map((v, k) => TY[tys[k]].lit(v)).join(' ')}))`);
    return wasmModule(`  (func (export "_start")\n${lines.join('\n')})`);
  }
  const stride = tys.reduce((s, t) => s + TY[t].w, 0);
  const bytes = [];
  for (const c of cases) c.forEach((v, k) => bytes.push(...TY[tys[k]].bytes(v)));
  let off = 0;
  const loads = tys.map((t) => { const s = `(${TY[t].load} offset=${off} (local.get $p))`; off += TY[t].w; return s; });
  return wasmModule(`  (data (i32.const ${DATA}) "${watBytes(bytes)}")
  (func (export "_start") (local $i i32) (local $p i32)
    (local.set $p (i32.const ${DATA}))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const ${cases.length})))
      (call $lbl (local.get $i))
      (call ${print} (${op} ${loads.join(' ')}))
      (local.set $p (i32.add (local.get $p) (i32.const ${stride})))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))))`, { memory: `(memory (export "memory") ${Math.ceil((DATA + bytes.length) / 65536) || 1})` });
}

// One trapping case: prints "before", then the instruction, then (never reached) "after".
function trapCase(op, tys, vals, print, mode) {
  if (mode === 'const') {
    return wasmModule(`  (func (export "_start") (call $before) (call ${print} (${op} ${vals.map((v, k) => TY[tys[k]].lit(v)).join(' ')})))`);
  }
  const bytes = [];
  vals.forEach((v, k) => bytes.push(...TY[tys[k]].bytes(v)));
  let off = 0;
  const loads = tys.map((t) => { const s = `(${TY[t].load} (i32.const ${DATA + off}))`; off += TY[t].w; return s; });
  return wasmModule(`  (data (i32.const ${DATA}) "${watBytes(bytes)}")
  (func (export "_start") (call $before) (call ${print} (${op} ${loads.join(' ')})))`);
}

const pairs = (set) => set.flatMap((a) => set.map((b) => [a, b]));

function generate() {
  const out = [];
  const add = (area, name, wat, expect) => out.push({ area, name, wat, expect });

  // ---- integers ----
  const INTBIN = ['add', 'sub', 'mul', 'div_s', 'div_u', 'rem_s', 'rem_u', 'and', 'or', 'xor', 'shl',
    'shr_s', 'shr_u', 'rotl', 'rotr', 'eq', 'ne', 'lt_s', 'lt_u', 'gt_s', 'gt_u', 'le_s', 'le_u',
    'ge_s', 'ge_u'];
  for (const t of ['i32', 'i64']) {
    const min = t === 'i32' ? 1n << 31n : 1n << 63n;
    const all = t === 'i32' ? M32 : M64;
    const traps = (op, [a, b]) => (op.startsWith('div') || op.startsWith('rem')) && b === 0n ||
      op === 'div_s' && a === min && b === all;
    for (const op of INTBIN) {
      const res = ['eq', 'ne'].includes(op) || /^[lg][te]_/.test(op) ? '$p32' : TY[t].print;
      for (const mode of ['mem', 'const']) {
        const set = mode === 'mem' ? (t === 'i32' ? I32 : I64) : (t === 'i32' ? I32S : I64S);
        const cases = pairs(set).filter((c) => !traps(op, c));
        add('integer', `${t}.${op}.${mode}`, packed(`${t}.${op}`, [t, t], res, cases, mode), 'exit');
      }
    }
    const UN = ['clz', 'ctz', 'popcnt', 'eqz', 'extend8_s', 'extend16_s'].concat(t === 'i64' ? ['extend32_s'] : []);
    const uset = (t === 'i32' ? I32 : I64).concat(t === 'i32'
      ? [0x80000000, 0x8000, 0xff80, 0x7f80, 0x00ff00ff, 0x40000000, 0xfffffffe, 0x10, 0x8].map(u32)
      : [1n << 32n, 0x80000000n, 0xffffffff80000000n, 0x8000n, 0xff80n, 0x100000000n, 1n << 62n, 0x10n].map(u64));
    for (const op of UN) {
      const res = op === 'eqz' ? '$p32' : TY[t].print;
      for (const mode of ['mem', 'const']) {
        add('integer', `${t}.${op}.${mode}`, packed(`${t}.${op}`, [t], res, uset.map((v) => [v]), mode), 'exit');
      }
    }
    // Traps: division by zero, INT_MIN / -1 for div_s (rem_s of the same is 0, in the packed modules).
    for (const op of ['div_s', 'div_u', 'rem_s', 'rem_u']) {
      for (const mode of ['mem', 'const']) {
        add('integer', `${t}.${op}.by_zero.${mode}`, trapCase(`${t}.${op}`, [t, t], [7n, 0n], TY[t].print, mode), 'trap');
      }
    }
    for (const mode of ['mem', 'const']) {
      add('integer', `${t}.div_s.overflow.${mode}`, trapCase(`${t}.div_s`, [t, t], [min, all], TY[t].print, mode), 'trap');
    }
  }
  for (const mode of ['mem', 'const']) {
    add('integer', `i32.wrap_i64.${mode}`, packed('i32.wrap_i64', ['i64'], '$p32', I64.map((v) => [v]), mode), 'exit');
    add('integer', `i64.extend_i32_s.${mode}`, packed('i64.extend_i32_s', ['i32'], '$p64', I32.map((v) => [v]), mode), 'exit');
    add('integer', `i64.extend_i32_u.${mode}`, packed('i64.extend_i32_u', ['i32'], '$p64', I32.map((v) => [v]), mode), 'exit');
  }

  // ---- floats ----
  for (const t of ['f32', 'f64']) {
    const set = t === 'f32' ? F32 : F64;
    const uset = t === 'f32' ? F32U : F64U;
    for (const op of ['add', 'sub', 'mul', 'div', 'min', 'max', 'copysign', 'eq', 'ne', 'lt', 'gt', 'le', 'ge']) {
      const res = op === 'copysign' ? TY[t].exact : ['eq', 'ne', 'lt', 'gt', 'le', 'ge'].includes(op) ? '$p32' : TY[t].print;
      for (const mode of ['mem', 'const']) {
        add('float', `${t}.${op}.${mode}`, packed(`${t}.${op}`, [t, t], res, pairs(set), mode), 'exit');
      }
    }
    for (const op of ['abs', 'neg', 'sqrt', 'ceil', 'floor', 'trunc', 'nearest']) {
      const res = ['abs', 'neg'].includes(op) ? TY[t].exact : TY[t].print;
      for (const mode of ['mem', 'const']) {
        add('float', `${t}.${op}.${mode}`, packed(`${t}.${op}`, [t], res, uset.map((v) => [v]), mode), 'exit');
      }
    }
    const it = t === 'f32' ? 'i32' : 'i64';
    for (const mode of ['mem', 'const']) {
      // Reinterpretation is exact both ways: float bits out, integer bits in (printed as bits).
      add('float', `${it}.reinterpret_${t}.${mode}`, packed(`${it}.reinterpret_${t}`, [t], TY[it].print, uset.map((v) => [v]), mode), 'exit');
      add('float', `${t}.reinterpret_${it}.${mode}`, packed(`${t}.reinterpret_${it}`, [it], TY[t].exact, uset.map((v) => [v]), mode), 'exit');
    }
  }
  for (const mode of ['mem', 'const']) {
    add('float', `f64.promote_f32.${mode}`, packed('f64.promote_f32', ['f32'], '$pf64', F32U.map((v) => [v]), mode), 'exit');
    add('float', `f32.demote_f64.${mode}`, packed('f32.demote_f64', ['f64'], '$pf32', F64U.map((v) => [v]), mode), 'exit');
  }

  // ---- conversions ----
  const RANGE = { i32_s: [-(1n << 31n), (1n << 31n) - 1n], i32_u: [0n, M32], i64_s: [-(1n << 63n), (1n << 63n) - 1n], i64_u: [0n, M64] };
  for (const it of ['i32', 'i64']) {
    for (const ft of ['f32', 'f64']) {
      const uset = ft === 'f32' ? F32U : F64U;
      const val = ft === 'f32' ? f32val : f64val;
      for (const sg of ['s', 'u']) {
        const [lo, hi] = RANGE[`${it}_${sg}`];
        const traps = (bits) => {
          const x = val(bits);
          if (!Number.isFinite(x)) return true;
          const tr = BigInt(Math.trunc(x));
          return tr < lo || tr > hi;
        };
        const op = `${it}.trunc_${ft}_${sg}`;
        for (const mode of ['mem', 'const']) {
          add('conversion', `${op}.${mode}`, packed(op, [ft], TY[it].print, uset.filter((b) => !traps(b)).map((v) => [v]), mode), 'exit');
          add('conversion', `${it}.trunc_sat_${ft}_${sg}.${mode}`, packed(`${it}.trunc_sat_${ft}_${sg}`, [ft], TY[it].print, uset.map((v) => [v]), mode), 'exit');
        }
        // Traps: NaN, +inf, -inf, the first values past either end.
        const past = (x) => ft === 'f32' ? f32bits(x) : f64bits(x);
        const over = sg === 's' ? Number(hi) + 1 : Number(hi) + 1;  // 2^31, 2^32, 2^63, 2^64 are exact
        const under = sg === 's' ? (ft === 'f32' || it === 'i64' ? Number(lo) * (1 + 2 ** -20) : Number(lo) - 1) : -1;
        const bad = [['nan', ft === 'f32' ? 0x7fc00000n : 0x7ff8000000000000n], ['inf', past(Infinity)],
          ['over', past(over)], ['under', past(under)]];
        for (const [name, bits] of bad) {
          if (!traps(bits)) throw new Error(`generator: ${op} ${name} does not trap`);
          add('conversion', `${op}.trap_${name}`, trapCase(op, [ft], [bits], TY[it].print, name === 'nan' ? 'mem' : 'const'), 'trap');
        }
      }
      for (const sg of ['s', 'u']) {
        const op = `${ft}.convert_${it}_${sg}`;
        const iset = (it === 'i32' ? I32 : I64).concat(it === 'i32'
          ? [0x01000001, 0x7fffff80, 0xffffff7f, 0x7ffffffe, 0x00ffffff].map(u32)
          : [(1n << 53n) + 1n, (1n << 63n) - 512n, (1n << 63n) - 1024n, 0x8000000000000401n, 0xfffffffffffff801n, 0x0020000000000001n].map(u64));
        for (const mode of ['mem', 'const']) {
          add('conversion', `${op}.${mode}`, packed(op, [it], TY[ft].exact, iset.map((v) => [v]), mode), 'exit');
        }
      }
    }
  }

  // ---- memory: every load and store width at the last valid address, one past, and with
  // an offset that overflows 32 bits ----
  const LOADS = [['i32.load', 4, '$p32'], ['i32.load8_s', 1, '$p32'], ['i32.load8_u', 1, '$p32'],
    ['i32.load16_s', 2, '$p32'], ['i32.load16_u', 2, '$p32'], ['i64.load', 8, '$p64'],
    ['i64.load8_s', 1, '$p64'], ['i64.load8_u', 1, '$p64'], ['i64.load16_s', 2, '$p64'],
    ['i64.load16_u', 2, '$p64'], ['i64.load32_s', 4, '$p64'], ['i64.load32_u', 4, '$p64'],
    ['f32.load', 4, '$pb32'], ['f64.load', 8, '$pb64']];
  const tail = watBytes([0x81, 0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7, 0xf8, 0x7f, 0x80, 0xff, 0x01].concat([0x00, 0x80, 0xc0, 0x7f]));
  for (const [op, w, pr] of LOADS) {
    const at = (a, off = 0) => `(call ${pr} (${op}${off ? ` offset=${off}` : ''} (i32.const ${a})))`;
    add('memory', `${op}.edges`, wasmModule(`  (data (i32.const ${65536 - 16}) "${tail}")
  (data (i32.const 1024) "${tail}")
  (func (export "_start")
    ${at(1024)} ${at(1025)} ${at(1027)} ${at(1024, 3)}
    ${at(65536 - 16)} ${at(65536 - 9)} ${at(65536 - w)} ${at(65536 - w - 3, 3)} ${at(0, 65536 - w)}
    (call ${pr} (${op} (i32.add (i32.const ${65536 - w}) (i32.const 0)))))`), 'exit');
    add('memory', `${op}.one_past`, wasmModule(`  (func (export "_start") (call $before) ${at(65536 - w + 1)})`), 'trap');
    add('memory', `${op}.offset_past`, wasmModule(`  (func (export "_start") (call $before) ${at(65536 - w, 1)})`), 'trap');
    add('memory', `${op}.offset_wraps`, wasmModule(`  (data (i32.const 0xff0) "x")
  (func (export "_start") (call $before) (call ${pr} (${op} offset=0xfffffff0 (i32.load (i32.const 1024)))))
  (data (i32.const 1024) "\\00\\10\\00\\00")`), 'trap');
  }
  const STORES = [['i32.store', 4, 'i32', 0x11223344n], ['i32.store8', 1, 'i32', 0xabcdn],
    ['i32.store16', 2, 'i32', 0xfedcban], ['i64.store', 8, 'i64', 0x0102030405060708n],
    ['i64.store8', 1, 'i64', 0x99n], ['i64.store16', 2, 'i64', 0x123456n], ['i64.store32', 4, 'i64', 0xcafebabedeadbeefn],
    ['f32.store', 4, 'f32', 0x7fa00001n], ['f64.store', 8, 'f64', 0xfff4000000000001n]];
  for (const [op, w, t, v] of STORES) {
    add('memory', `${op}.edges`, wasmModule(`  (func (export "_start")
    (${op} (i32.const ${65536 - w}) ${TY[t].lit(v)})
    (${op} offset=7 (i32.const 1024) ${TY[t].lit(v)})
    (call $p64 (i64.load (i32.const ${65536 - 8}))) (call $p64 (i64.load (i32.const 1024)))
    (call $p64 (i64.load (i32.const 1032))))`), 'exit');
    add('memory', `${op}.one_past`, wasmModule(`  (func (export "_start") (call $before) (${op} (i32.const ${65536 - w + 1}) ${TY[t].lit(v)}))`), 'trap');
    add('memory', `${op}.offset_wraps`, wasmModule(`  (func (export "_start") (call $before) (${op} offset=0xffffffff (i32.const 1) ${TY[t].lit(v)}))`), 'trap');
  }

  // ---- control: br_table with many targets, every index and past the end ----
  for (const n of [1, 2, 17, 200]) {
    const blocks = [];
    let body = `(br_table ${Array.from({ length: n }, (_, i) => `$b${i}`).join(' ')} $dflt (local.get $i))`;
    for (let i = 0; i < n; i++) body = `(block $b${i} ${body}) (return (i32.const ${i * 7 + 1}))`;
    blocks.push(`(func $sw (param $i i32) (result i32) (block $dflt ${body}) (i32.const -99))`);
    const idx = [0, 1, n - 1, n, n + 1, 0x7fffffff, -1].map(u32);
    add('control', `br_table.${n}`, wasmModule(`  ${blocks.join('\n')}
  (data (i32.const ${DATA}) "${watBytes(idx.flatMap((v) => le(v, 4)))}")
  (func (export "_start") (local $k i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $k) (i32.const ${idx.length})))
      (call $p32 (call $sw (i32.load (i32.add (i32.const ${DATA}) (i32.shl (local.get $k) (i32.const 2))))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br $next))))`), 'exit');
  }
  return out;
}

module.exports = { generate, PRELUDE };
