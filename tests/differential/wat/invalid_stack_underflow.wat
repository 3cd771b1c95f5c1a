;; area: invalid
;; expect: invalid
;; wat2wasm: --no-check
;; silent: never runs
;; A module that does not validate: both engines must refuse it.
(module
  ;;@print
  (memory (export "memory") 1)
  (func (result i32) (i32.add (i32.const 1)))
  (func (export "_start") (call $before))
)
