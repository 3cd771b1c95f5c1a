;; Checks that its whole memory starts zeroed (exit 1 if not), then grows it and fills
;; every byte with 0xAA. Run twice: the second run must not see the first run's bytes,
;; however moat recycles memory between instances.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $i i32) (local $end i32)
    (local.set $end (i32.mul (memory.size) (i32.const 65536)))
    (block $done
      (loop $scan
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (if (i64.ne (i64.load (local.get $i)) (i64.const 0))
          (then (call $proc_exit (i32.const 1))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $scan)))
    (drop (memory.grow (i32.const 15)))
    (memory.fill (i32.const 0) (i32.const 0xAA) (i32.mul (memory.size) (i32.const 65536)))
    (call $proc_exit (i32.const 0))))
