;; area: control
;; expect: exit
;; return with multiple values out of loops and blocks; br to a function's outermost label.
(module
  ;;@print
  (memory (export "memory") 1)
  (func $find (param $n i32) (result i32 i32) (local $i i32)
    (loop $l
      (block $skip
        (br_if $skip (i32.rem_u (local.get $i) (i32.const 7)))
        (if (i32.gt_u (local.get $i) (local.get $n))
          (then (return (local.get $i) (i32.mul (local.get $i) (i32.const 2))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))
    (unreachable))
  (func $early (param $x i32) (result i64)
    (i64.const 5)
    (br_if 0 (local.get $x))
    (drop)
    (i64.const 6))
  (func (export "_start")
    (call $find (i32.const 30)) (call $p32) (call $p32)
    (call $p64 (call $early (i32.const 1)))
    (call $p64 (call $early (i32.const 0))))
)
