;; area: memory
;; expect: trap
;; memory.init out of bounds (or of a dropped segment) traps.
(module
  ;;@print
  (memory (export "memory") 1)
  (data $a "ABCDEFGHIJKLMNOP")
  (func (export "_start") (call $before) (memory.init $a (i32.const 1024) (i32.const 17) (i32.const 0)) (call $before))
)
