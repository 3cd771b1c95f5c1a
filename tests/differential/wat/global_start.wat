;; area: global
;; expect: exit
;; A start function runs once, before _start: its writes to globals and memory are visible.
(module
  ;;@print
  (memory (export "memory") 1)
  (global $runs (mut i32) (i32.const 0))
  (global $order (mut i32) (i32.const 0))
  (func $init
    (global.set $runs (i32.add (global.get $runs) (i32.const 1)))
    (global.set $order (i32.or (i32.shl (global.get $order) (i32.const 4)) (i32.const 1)))
    (i64.store (i32.const 1024) (i64.const 0x0102030405060708)))
  (start $init)
  (func (export "_start")
    (global.set $order (i32.or (i32.shl (global.get $order) (i32.const 4)) (i32.const 2)))
    (call $p32 (global.get $runs))
    (call $p32 (global.get $order))
    (call $p64 (i64.load (i32.const 1024))))
)
