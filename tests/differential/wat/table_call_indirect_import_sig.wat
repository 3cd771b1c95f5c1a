;; area: table
;; expect: trap
;; An imported function in the table called with the wrong signature traps.
(module
  ;;@print
  (memory (export "memory") 1)
  (type $i_i (func (param i32) (result i32)))
  (table $t 1 funcref)
  (elem (i32.const 0) func $proc_exit)
  (func (export "_start")
    (call $before)
    (drop (call_indirect $t (type $i_i) (i32.const 3) (i32.const 0)))
    (call $before))
)
