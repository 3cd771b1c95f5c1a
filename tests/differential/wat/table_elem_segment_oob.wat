;; area: table
;; expect: trap
;; silent: traps while instantiating
;; An active element segment that does not fit traps before anything runs.
(module
  ;;@print
  (memory (export "memory") 1)
  (table $t 2 funcref)
  (func $f)
  (elem (i32.const 1) func $f $f)
  (func (export "_start") (call $before))
)
