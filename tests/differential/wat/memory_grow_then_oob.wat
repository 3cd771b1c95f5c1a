;; area: memory
;; expect: trap
;; After memory.grow the new end is the bound: one byte past it traps.
(module
  ;;@print
  (memory (export "memory") 1)
  (func (export "_start")
    (call $p32 (memory.grow (i32.const 1)))
    (call $p32 (i32.load8_u (i32.const 131071)))
    (call $p32 (i32.load16_u (i32.const 131071))))
)
