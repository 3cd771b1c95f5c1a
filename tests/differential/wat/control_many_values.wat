;; area: control
;; expect: exit
;; A function returning twelve values of mixed types, a block taking five params, and locals
;; that start at zero (also in a recursive call and on every loop iteration's callee).
(module
  ;;@print
  (memory (export "memory") 1)
  (func $many (param $x i32) (result i32 i64 f32 f64 i32 i64 f32 f64 i32 i64 f32 f64)
    (local.get $x) (i64.const -1) (f32.const -0) (f64.const nan:0x8000000000001)
    (i32.const 2) (i64.extend_i32_u (local.get $x)) (f32.const inf) (f64.const 0x1p-1074)
    (i32.const 3) (i64.const 0x7fffffffffffffff) (f32.const nan:0x400000) (f64.const -1.5))
  (func $zeros (param $n i32) (result i64) (local $a i32) (local $b i64) (local $c f32) (local $d f64)
    (local.set $a (local.get $n))
    (if (local.get $n) (then (drop (call $zeros (i32.sub (local.get $n) (i32.const 1))))))
    (i64.or (i64.or (local.get $b) (i64.reinterpret_f64 (local.get $d)))
            (i64.extend_i32_u (i32.reinterpret_f32 (local.get $c)))))
  (func (export "_start") (local $i i32)
    (call $many (i32.const 0x55))
    (call $pb64) (call $pb32) (call $p64) (call $p32)
    (call $pb64) (call $pb32) (call $p64) (call $p32)
    (call $pb64) (call $pb32) (call $p64) (call $p32)
    (i32.const 1) (i64.const 2) (f32.const 3) (f64.const 4) (i32.const 5)
    (block (param i32 i64 f32 f64 i32) (result i64)
      (drop) (drop) (drop) (i64.add (i64.const 10)) (call $p64) (call $p32) (i64.const 7))
    (call $p64)
    (loop $l
      (call $p64 (call $zeros (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 3)))))
)
