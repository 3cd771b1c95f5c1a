;; area: global
;; expect: trap
;; silent: the start function traps while instantiating, before _start
;; A start function that traps ends the run before _start.
(module
  ;;@print
  (memory (export "memory") 1)
  (func $init (drop (i32.rem_u (i32.const 1) (i32.const 0))))
  (start $init)
  (func (export "_start") (call $before))
)
