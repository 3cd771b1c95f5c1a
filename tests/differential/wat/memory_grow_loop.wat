;; area: memory
;; expect: exit
;; Growing memory inside a loop and from a called function, then using the new pages in the
;; same function right away (a cached base or bound would go stale).
(module
  ;;@print
  (memory (export "memory") 1 40)
  (func $grow1 (result i32) (memory.grow (i32.const 1)))
  (func (export "_start") (local $i i32) (local $end i32) (local $sum i64)
    (loop $l
      (local.set $end (i32.shl (i32.add (memory.grow (i32.const 1)) (i32.const 1)) (i32.const 16)))
      (i64.store (i32.sub (local.get $end) (i32.const 8)) (i64.extend_i32_u (local.get $end)))
      (local.set $sum (i64.add (local.get $sum) (i64.load (i32.sub (local.get $end) (i32.const 8)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 12))))
    (call $p64 (local.get $sum))
    (call $p32 (memory.size))
    (local.set $i (i32.const 0))
    (loop $l2
      (local.set $end (i32.shl (i32.add (call $grow1) (i32.const 1)) (i32.const 16)))
      (i32.store8 (i32.sub (local.get $end) (i32.const 1)) (local.get $i))
      (memory.fill (i32.sub (local.get $end) (i32.const 65536)) (i32.const 0x5a) (i32.const 65535))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l2 (i32.lt_u (local.get $i) (i32.const 10))))
    (call $p32 (memory.size))
    (call $p32 (i32.load (i32.const 1441788)))
    (memory.copy (i32.const 1024) (i32.const 1441790) (i32.const 2))
    (call $p32 (i32.load16_u (i32.const 1024)))
    (call $p32 (memory.grow (i32.const 18)))
    (call $p32 (memory.grow (i32.const 17)))
    (call $p32 (i32.load8_u (i32.const 2621439))))
)
