;; area: control
;; expect: exit
;; proc_exit from a nested call ends the run with its code; nothing after it runs.
(module
  ;;@print
  (memory (export "memory") 1)
  (func $deep (param $n i32)
    (if (i32.eqz (local.get $n)) (then (call $proc_exit (i32.const 42))))
    (call $deep (i32.sub (local.get $n) (i32.const 1)))
    (call $before))
  (func (export "_start") (call $p32 (i32.const 1)) (call $deep (i32.const 50)) (call $p32 (i32.const 2)))
)
