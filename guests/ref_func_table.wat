;; ref.func stored into a funcref table by table.set, table.grow and table.fill, and by a
;; funcref global's initializer (WebAssembly 2.0, reference types): valid, and must run.
;; Exits with f + g + h through the table plus table.grow's result: 40 + 2 + 3 + 1 = 46.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (type $r (func (result i32)))
  (table $t 1 funcref)
  (global $gf funcref (ref.func $f))
  (func $f (result i32) (i32.const 40))
  (func $g (result i32) (i32.const 2))
  (func $h (result i32) (i32.const 3))
  (elem declare func $g $h)
  (func (export "_start")
    (local $grown i32)
    (table.set $t (i32.const 0) (global.get $gf))
    (local.set $grown (table.grow $t (ref.func $g) (i32.const 2)))
    (table.fill $t (i32.const 2) (ref.func $h) (i32.const 1))
    (call $exit
      (i32.add
        (i32.add (call_indirect $t (type $r) (i32.const 0))
                 (call_indirect $t (type $r) (i32.const 1)))
        (i32.add (call_indirect $t (type $r) (i32.const 2)) (local.get $grown))))))
