;; area: memory
;; expect: exit
;; An active data segment counts as dropped once instantiated: memory.init of it with length
;; zero is allowed (at offset 0 and past its end), and data.drop of it is a no-op.
(module
  ;;@print
  (memory (export "memory") 1)
  (data $act (i32.const 1024) "active")
  (func (export "_start")
    (memory.init $act (i32.const 2048) (i32.const 0) (i32.const 0))
    (data.drop $act)
    (call $puts (i32.const 1024) (i32.const 6)) (call $nl))
)
