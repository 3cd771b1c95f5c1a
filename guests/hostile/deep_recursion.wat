;; Recurses on the native stack only (no shadow stack in linear memory): must become a
;; stack-exhaustion trap on the guard page, never a host crash. The recursive call goes
;; through the table so no C compiler can turn the recursion into a loop.
(module
  (type $t (func (param i64) (result i64)))
  (memory (export "memory") 1)
  (table 1 funcref)
  (elem (i32.const 0) $down)
  (func $down (type $t) (param $n i64) (result i64)
    (i64.add
      (call_indirect (type $t) (i64.add (local.get $n) (i64.const 1)) (i32.const 0))
      (local.get $n)))
  (func (export "_start") (drop (call $down (i64.const 0)))))
