;; area: global
;; expect: exit
;; Data and element segments are in place when the start function runs.
(module
  ;;@print
  (memory (export "memory") 1)
  (type $v_i (func (result i32)))
  (table 2 funcref)
  (func $seven (result i32) (i32.const 7))
  (elem (i32.const 1) func $seven)
  (data (i32.const 1024) "\2a\00\00\00")
  (global $seen (mut i32) (i32.const 0))
  (func $init (global.set $seen (i32.add (i32.load (i32.const 1024)) (call_indirect (type $v_i) (i32.const 1)))))
  (start $init)
  (func (export "_start") (call $p32 (global.get $seen)))
)
