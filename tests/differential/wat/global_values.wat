;; area: global
;; expect: exit
;; Mutable and immutable globals of every number type, changed by functions and exported.
(module
  ;;@print
  (memory (export "memory") 1)
  (global $a (mut i32) (i32.const -1))
  (global $b (mut i64) (i64.const 0x8000000000000000))
  (global $c (mut f32) (f32.const nan:0x200001))
  (global $d (mut f64) (f64.const -0))
  (global $k i32 (i32.const 0x7fffffff))
  (global (export "g") (mut i32) (i32.const 5))
  (func $bump (global.set $a (i32.add (global.get $a) (global.get $k))))
  (func (export "_start")
    (call $p32 (global.get $a)) (call $p64 (global.get $b))
    (call $pb32 (global.get $c)) (call $pb64 (global.get $d))
    (call $bump) (call $bump)
    (global.set $b (i64.sub (global.get $b) (i64.const 1)))
    (global.set $c (f32.neg (global.get $c)))
    (global.set $d (f64.add (global.get $d) (f64.const 0.1)))
    (call $p32 (global.get $a)) (call $p64 (global.get $b))
    (call $pb32 (global.get $c)) (call $pb64 (global.get $d))
    (call $p32 (global.get 5)))
)
