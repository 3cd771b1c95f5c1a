;; area: control
;; expect: trap
;; Recursion through call_indirect until the stack is exhausted.
(module
  ;;@print
  (memory (export "memory") 1)
  (type $i_i (func (param i32) (result i32)))
  (table 1 funcref)
  (func $r (type $i_i)
    (i32.xor (call_indirect (type $i_i) (i32.mul (local.get 0) (i32.const 3)) (i32.const 0)) (local.get 0)))
  (elem (i32.const 0) $r)
  (func (export "_start") (call $before) (call $p32 (call $r (i32.const 1))))
)
