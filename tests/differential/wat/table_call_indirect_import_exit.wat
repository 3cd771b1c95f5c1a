;; area: table
;; expect: exit
;; An imported host function (proc_exit) in the table, called through call_indirect: the run
;; ends with its code.
(module
  ;;@print
  (memory (export "memory") 1)
  (type $exit (func (param i32)))
  (table $t 2 funcref)
  (elem (i32.const 1) func $proc_exit)
  (func (export "_start")
    (call $p32 (i32.const 1))
    (call_indirect $t (type $exit) (i32.const 17) (i32.const 1))
    (call $before))
)
