;; Recurses on the native stack only (no shadow stack in linear memory): must become a
;; stack-exhaustion trap on the guard page, never a host crash.
(module
  (memory (export "memory") 1)
  (func $down (param $n i64) (result i64)
    (i64.add (call $down (i64.add (local.get $n) (i64.const 1))) (local.get $n)))
  (func (export "_start") (drop (call $down (i64.const 0)))))
