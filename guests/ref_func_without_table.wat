;; ref.func in a module without a table (the function declared by a declarative element
;; segment): valid WebAssembly 2.0; exits with 5 when the reference is not null.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func $f)
  (elem declare func $f)
  (func (export "_start")
    (call $exit (select (i32.const 6) (i32.const 5) (ref.is_null (ref.func $f))))))
