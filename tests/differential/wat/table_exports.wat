;; area: table
;; expect: exit
;; A module that also exports its table, a global and a function; funcref locals start null
;; and hold what table.get returns.
(module
  ;;@print
  (memory (export "memory") 1)
  (type $v_i (func (result i32)))
  (table $t (export "tab") 2 funcref)
  (global (export "konst") i32 (i32.const 4))
  (func $f (export "f") (result i32) (i32.const 3))
  (elem (i32.const 0) $f)
  (func (export "_start") (local $r funcref) (local $s funcref)
    (call $p32 (ref.is_null (local.get $r)))
    (local.set $r (table.get $t (i32.const 0)))
    (local.set $s (table.get $t (i32.const 1)))
    (call $p32 (ref.is_null (local.get $r)))
    (call $p32 (ref.is_null (local.get $s)))
    (table.set $t (i32.const 1) (local.get $r))
    (table.set $t (i32.const 0) (local.get $s))
    (call $p32 (call_indirect $t (type $v_i) (i32.const 1)))
    (call $p32 (ref.is_null (table.get $t (i32.const 0)))))
)
