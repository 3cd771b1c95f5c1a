;; area: memory
;; expect: trap
;; memory.init of an active data segment (dropped once instantiated) with length 1 traps.
(module
  ;;@print
  (memory (export "memory") 1)
  (data $act (i32.const 1024) "active")
  (func (export "_start") (call $before) (memory.init $act (i32.const 2048) (i32.const 0) (i32.const 1)) (call $before))
)
