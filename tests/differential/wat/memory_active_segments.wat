;; area: memory
;; expect: exit
;; Active data segments: placement, later segments overwrite earlier ones, one ending at the
;; last byte, an empty one at the very end.
(module
  ;;@print
  (memory (export "memory") 1)
  (data (i32.const 1024) "0123456789")
  (data (i32.const 1028) "abc")
  (data (i32.const 1026) "X")
  (data (i32.const 65532) "\de\ad\be\ef")
  (data (i32.const 65536) "")
  (func (export "_start")
    (call $puts (i32.const 1024) (i32.const 10)) (call $nl)
    (call $p32 (i32.load (i32.const 65532))))
)
