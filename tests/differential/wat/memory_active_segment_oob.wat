;; area: memory
;; expect: trap
;; silent: traps while instantiating
;; An active data segment that does not fit traps before anything runs.
(module
  ;;@print
  (memory (export "memory") 1)
  (data (i32.const 65535) "ab")
  (func (export "_start") (call $before))
)
