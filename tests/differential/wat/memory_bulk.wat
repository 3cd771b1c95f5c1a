;; area: memory
;; expect: exit
;; memory.fill and memory.copy in bounds: overlapping copies both ways, zero lengths at the
;; very end of memory, a fill value above 255 (only its low byte is stored).
(module
  ;;@print
  (memory (export "memory") 1)
  (data (i32.const 2048) "\01\02\03\04\05\06\07\08\09\0a\0b\0c\0d\0e\0f\10")
  (func $show (param $p i32)
    (call $p64 (i64.load (local.get $p))) (call $p64 (i64.load offset=8 (local.get $p)))
    (call $p64 (i64.load offset=16 (local.get $p))))
  (func (export "_start")
    (memory.fill (i32.const 1024) (i32.const 0x1ab) (i32.const 5))
    (call $show (i32.const 1024))
    ;; overlapping, destination above the source (copies backwards)
    (memory.copy (i32.const 2051) (i32.const 2048) (i32.const 10))
    (call $show (i32.const 2048))
    ;; overlapping, destination below the source (copies forwards)
    (memory.copy (i32.const 2049) (i32.const 2053) (i32.const 9))
    (call $show (i32.const 2048))
    ;; copy onto itself
    (memory.copy (i32.const 2050) (i32.const 2050) (i32.const 6))
    (call $show (i32.const 2048))
    ;; zero lengths at the end of memory are in bounds
    (memory.fill (i32.const 65536) (i32.const 7) (i32.const 0))
    (memory.copy (i32.const 65536) (i32.const 0) (i32.const 0))
    (memory.copy (i32.const 0) (i32.const 65536) (i32.const 0))
    ;; up to the last byte
    (memory.fill (i32.const 65530) (i32.const 0xee) (i32.const 6))
    (memory.copy (i32.const 65528) (i32.const 65532) (i32.const 4))
    (call $p64 (i64.load (i32.const 65528)))
    (call $p32 (memory.size)))
)
