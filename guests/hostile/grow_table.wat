;; Grows a table by 9M entries (216 MB of host memory): beyond a small memory limit it
;; must return -1 (exit code 0 when it did).
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (func (export "_start")
    (call $proc_exit
      (i32.ne (table.grow $t (ref.null func) (i32.const 9000000)) (i32.const -1)))))
