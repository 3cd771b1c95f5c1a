;; area: control
;; expect: trap
;; Unbounded recursion exhausts the stack in both engines (compared as the trap only).
(module
  ;;@print
  (memory (export "memory") 1)
  (func $r (param $n i64) (result i64) (i64.add (call $r (i64.add (local.get $n) (i64.const 1))) (i64.const 1)))
  (func (export "_start") (call $before) (call $p64 (call $r (i64.const 0))))
)
