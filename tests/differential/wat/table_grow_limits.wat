;; area: table
;; expect: exit
;; table.grow against a maximum and by huge amounts fails with -1 and leaves the size alone.
(module
  ;;@print
  (memory (export "memory") 1)
  (table $t 1 3 funcref)
  (table $u 0 funcref)
  (func $f)
  (elem declare func $f)
  (func (export "_start")
    (call $p32 (table.grow $t (ref.func $f) (i32.const 3)))
    (call $p32 (table.grow $t (ref.func $f) (i32.const 2)))
    (call $p32 (table.grow $t (ref.null func) (i32.const 0)))
    (call $p32 (table.size $t))
    (call $p32 (table.grow $u (ref.null func) (i32.const -1)))
    (call $p32 (table.grow $u (ref.func $f) (i32.const 1)))
    (call $p32 (ref.is_null (table.get $u (i32.const 0))))
    (call $p32 (table.size $u)))
)
