;; area: control
;; expect: trap
;; Mutual recursion with large frames (many locals) until the stack is exhausted.
(module
  ;;@print
  (memory (export "memory") 1)
  (func $a (param $n i32) (result f64) (local f64 f64 f64 f64 f64 f64 f64 f64 i64 i64 i64 i64)
    (local.set 1 (f64.convert_i32_s (local.get $n)))
    (f64.add (local.get 1) (call $b (i32.add (local.get $n) (i32.const 1)) (local.get 1) (local.get 1) (local.get 1))))
  (func $b (param $n i32) (param f64 f64 f64) (result f64)
    (f64.mul (local.get 1) (call $a (local.get $n))))
  (func (export "_start") (call $before) (call $pf64 (call $a (i32.const 0))))
)
