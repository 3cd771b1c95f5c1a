;; Host functions called through a table: placed by an active element segment, and stored
;; by table.set of a ref.func. Prints "ok" twice through fd_write, then proc_exit(17), all
;; by call_indirect. (wasm2c gave such calls the wrong host context: a crash.)
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (type $w (func (param i32 i32 i32 i32) (result i32)))
  (type $e (func (param i32)))
  (table $t 3 funcref)
  (elem (table $t) (i32.const 1) func $write $exit)
  (data (i32.const 16) "ok\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))  ;; one iovec: "ok\n"
    (i32.store (i32.const 4) (i32.const 3))
    (drop (call_indirect $t (type $w)
      (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8) (i32.const 1)))
    (table.set $t (i32.const 0) (ref.func $write))
    (drop (call_indirect $t (type $w)
      (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8) (i32.const 0)))
    (call_indirect $t (type $e) (i32.const 17) (i32.const 2))))
