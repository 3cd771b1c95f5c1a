;; area: table
;; expect: exit
;; Growing a table in a loop and calling through the new entries right away.
(module
  ;;@print
  (memory (export "memory") 1)
  (type $i_i (func (param i32) (result i32)))
  (table $t 0 funcref)
  (func $dbl (type $i_i) (i32.shl (local.get 0) (i32.const 1)))
  (func $inc (type $i_i) (i32.add (local.get 0) (i32.const 1)))
  (elem declare func $dbl $inc)
  (func (export "_start") (local $i i32) (local $acc i32)
    (local.set $acc (i32.const 1))
    (loop $l
      (drop (table.grow $t (select (result funcref) (ref.func $dbl) (ref.func $inc) (i32.and (local.get $i) (i32.const 1))) (i32.const 1)))
      (local.set $acc (call_indirect $t (type $i_i) (local.get $acc) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 20))))
    (call $p32 (local.get $acc))
    (call $p32 (table.size $t))
    (call $p32 (table.grow $t (ref.null func) (i32.const 1000)))
    (call $p32 (ref.is_null (table.get $t (i32.const 1019))))
    (call $p32 (call_indirect $t (type $i_i) (i32.const 5) (i32.const 19))))
)
