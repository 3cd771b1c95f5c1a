;; area: memory
;; expect: exit
;; memory.grow and memory.size with a maximum: results, then bounds after growing.
(module
  ;;@print
  (memory (export "memory") 1 3)
  (func (export "_start")
    (call $p32 (memory.size))
    (call $p32 (memory.grow (i32.const 0)))
    (call $p32 (memory.grow (i32.const 1)))
    (call $p32 (memory.size))
    (i32.store (i32.const 131068) (i32.const 0x12345678))
    (call $p32 (i32.load (i32.const 131068)))
    (call $p32 (i32.load8_u (i32.const 65536)))
    (call $p32 (memory.grow (i32.const 2)))
    (call $p32 (memory.grow (i32.const -1)))
    (call $p32 (memory.grow (i32.const 0x10000)))
    (call $p32 (memory.grow (i32.const 1)))
    (call $p32 (memory.size))
    (call $p32 (memory.grow (i32.const 1)))
    (call $p64 (i64.load (i32.const 196600))))
)
