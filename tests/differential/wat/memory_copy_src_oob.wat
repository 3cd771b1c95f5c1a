;; area: memory
;; expect: trap
;; A bulk memory operation out of bounds traps (and writes nothing).
(module
  ;;@print
  (memory (export "memory") 1)
  (func (export "_start") (call $before) (memory.copy (i32.const 0) (i32.const 65535) (i32.const 2)) (call $before))
)
