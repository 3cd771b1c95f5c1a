;; area: control
;; expect: exit
;; br_table carrying a value out of nested blocks, in a loop over indices including the default.
(module
  ;;@print
  (memory (export "memory") 1)
  (func $pick (param $i i32) (result i32)
    (i32.add (i32.const 1000)
      (block $d (result i32)
        (i32.add (i32.const 100)
          (block $b (result i32)
            (i32.add (i32.const 10)
              (block $a (result i32)
                (br_table $a $b $a $d (i32.mul (local.get $i) (i32.const 3)) (local.get $i)))))))))
  (func (export "_start") (local $i i32)
    (local.set $i (i32.const -2))
    (loop $l
      (call $p32 (call $pick (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_s (local.get $i) (i32.const 6)))))
)
