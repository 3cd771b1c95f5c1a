;; area: memory
;; expect: trap
;; A bulk memory operation out of bounds traps (and writes nothing).
(module
  ;;@print
  (memory (export "memory") 1)
  (func (export "_start") (call $before) (memory.fill (i32.const 1) (i32.const 1) (i32.const -1)) (call $before))
)
