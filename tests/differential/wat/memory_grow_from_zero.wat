;; area: memory
;; expect: exit
;; A memory of no pages without a maximum: grow from zero; growing past 4 GiB fails. (Growing
;; to sizes V8 allows but moat's --memory cap refuses is a resource limit, not compared.)
(module
  ;;@print
  (memory (export "memory") 0)
  (func (export "_start")
    (drop (memory.grow (i32.const 1)))
    (call $p32 (memory.size))
    (call $p32 (memory.grow (i32.const 0x10000)))
    (call $p32 (memory.grow (i32.const 0x10001)))
    (call $p32 (memory.grow (i32.const 2)))
    (call $p32 (memory.size))
    (i64.store (i32.const 196600) (i64.const -2))
    (call $p64 (i64.load (i32.const 196600))))
)
