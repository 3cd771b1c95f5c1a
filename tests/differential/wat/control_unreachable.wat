;; area: control
;; expect: trap
;; unreachable inside nested blocks and a call.
(module
  ;;@print
  (memory (export "memory") 1)
  (func $f (param i32) (result i32) (block (result i32) (local.get 0) (br_if 0 (i32.eqz (local.get 0))) (drop) unreachable))
  (func (export "_start") (call $before) (call $p32 (call $f (i32.const 0))) (call $p32 (call $f (i32.const 1))))
)
