;; Grows memory past the limit: memory.grow must return -1 (exit code 0 when it did).
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    ;; 2048 pages = 128 MiB: beyond a 64 MiB limit
    (call $proc_exit (i32.ne (memory.grow (i32.const 2048)) (i32.const -1)))))
