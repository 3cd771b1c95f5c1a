;; area: table
;; expect: exit
;; call_indirect compares signatures by structure: two type definitions with the same
;; params and results match each other.
(module
  ;;@print
  (memory (export "memory") 1)
  (type $a (func (param i64) (result i32)))
  (type $b (func (param i64) (result i32)))
  (type $c (func (param i64) (result i64)))
  (table $t 2 funcref)
  (func $wrap (type $a) (i32.wrap_i64 (local.get 0)))
  (func $id (type $c) (local.get 0))
  (elem (i32.const 0) func $wrap $id)
  (func (export "_start")
    (call $p32 (call_indirect $t (type $a) (i64.const 0x1234567890) (i32.const 0)))
    (call $p32 (call_indirect $t (type $b) (i64.const -3) (i32.const 0)))
    (call $p64 (call_indirect $t (type $c) (i64.const -3) (i32.const 1))))
)
