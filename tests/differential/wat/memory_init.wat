;; area: memory
;; expect: exit
;; Passive data segments: memory.init with offsets and lengths, data.drop, then a zero-length
;; init of a dropped segment (allowed), and an empty segment.
(module
  ;;@print
  (memory (export "memory") 1)
  (data $a "ABCDEFGHIJKLMNOP")
  (data $b "\ff\fe\fd")
  (data $e "")
  (data (i32.const 1024) "zzzzzzzzzzzzzzzzzzzzzzzz")
  (func $show (call $puts (i32.const 1024) (i32.const 24)) (call $nl))
  (func (export "_start")
    (memory.init $a (i32.const 1024) (i32.const 0) (i32.const 4))
    (call $show)
    (memory.init $a (i32.const 1030) (i32.const 10) (i32.const 6))
    (call $show)
    (memory.init $b (i32.const 1040) (i32.const 1) (i32.const 2))
    (call $p32 (i32.load (i32.const 1040)))
    (memory.init $a (i32.const 1028) (i32.const 16) (i32.const 0))
    (memory.init $e (i32.const 65536) (i32.const 0) (i32.const 0))
    (data.drop $a)
    (data.drop $a)
    (memory.init $a (i32.const 1024) (i32.const 0) (i32.const 0))
    (memory.init $b (i32.const 65533) (i32.const 0) (i32.const 3))
    (call $p32 (i32.load (i32.const 65532)))
    (call $show))
)
