;; area: global
;; expect: exit
;; A mutable funcref global set from ref.func (the function declared by a declarative
;; segment), a typed select of funcrefs, ref.is_null; once in a module with a table, once
;; without.
(module
  ;;@print
  (memory (export "memory") 1)
  (table 1 funcref)
  (global $r (mut funcref) (ref.null func))
  (func $f (result i32) (i32.const 9))
  (elem declare func $f)
  (func (export "_start")
    (call $p32 (ref.is_null (global.get $r)))
    (global.set $r (ref.func $f))
    (call $p32 (ref.is_null (global.get $r)))
    (call $p32 (ref.is_null (ref.func $f)))
    (call $p32 (ref.is_null (select (result funcref) (ref.null func) (ref.func $f) (i32.const 0))))
    (call $p32 (ref.is_null (select (result funcref) (ref.null func) (global.get $r) (i32.const 1)))))
)
