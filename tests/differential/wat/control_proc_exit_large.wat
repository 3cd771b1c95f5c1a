;; area: control
;; expect: exit
;; An exit code above 255 (compared in full: moat's report keeps it).
(module
  ;;@print
  (memory (export "memory") 1)
  (func (export "_start") (call $p32 (i32.const 1)) (call $proc_exit (i32.const 300)))
)
