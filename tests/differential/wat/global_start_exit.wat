;; area: global
;; expect: exit
;; silent: the start function exits while instantiating, before _start
;; A start function that calls proc_exit ends the run with that code; _start never runs.
(module
  ;;@print
  (memory (export "memory") 1)
  (func $init (call $proc_exit (i32.const 9)))
  (start $init)
  (func (export "_start") (call $before) (call $proc_exit (i32.const 1)))
)
