;; area: table
;; expect: trap
;; An declarative element segment counts as dropped once instantiated: table.init of it with length
;; zero is allowed, with length 1 traps.
(module
  ;;@print
  (memory (export "memory") 1)
  (table $t 2 funcref)
  (func $f)
  (elem $s declare func $f)
  (func (export "_start")
    (table.init $t $s (i32.const 1) (i32.const 0) (i32.const 0))
    (elem.drop $s)
    (call $before)
    (table.init $t $s (i32.const 1) (i32.const 0) (i32.const 1))
    (call $before))
)
