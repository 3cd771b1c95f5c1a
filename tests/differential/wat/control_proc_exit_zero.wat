;; area: control
;; expect: exit
;; proc_exit(0) inside a loop.
(module
  ;;@print
  (memory (export "memory") 1)
  (func (export "_start") (local $i i32)
    (loop $l
      (call $p32 (local.get $i))
      (if (i32.eq (local.get $i) (i32.const 3)) (then (call $proc_exit (i32.const 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
)
