;; area: table
;; expect: exit
;; An imported host function (fd_write) in the table, called through call_indirect.
(module
  ;;@print
  (memory (export "memory") 1)
  (type $write (func (param i32 i32 i32 i32) (result i32)))
  (table $t 1 funcref)
  (elem (i32.const 0) func $fd_write)
  (data (i32.const 1024) "ok\n")
  (func (export "_start")
    (call $p32 (i32.const 1))
    (i32.store (i32.const 1040) (i32.const 1024))
    (i32.store (i32.const 1044) (i32.const 3))
    (call $p32 (call_indirect $t (type $write) (i32.const 1) (i32.const 1040) (i32.const 1) (i32.const 1048) (i32.const 0)))
    (call $p32 (i32.load (i32.const 1048))))
)
