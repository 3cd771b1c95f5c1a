;; area: control
;; expect: exit
;; Code after br, return and br_table (stack-polymorphic) is valid and never runs.
(module
  ;;@print
  (memory (export "memory") 1)
  (func $f (param $x i32) (result i32)
    (block $b (result i32)
      (br $b (i32.const 1))
      (i32.add (i32.const 2))
      unreachable)
    (block $c (br_table $c $c (local.get $x)) (call $before) (unreachable))
    (if (local.get $x) (then (return (i32.const 3)) (drop) (unreachable)))
    (i32.add (i32.const 4)))
  (func (export "_start")
    (call $p32 (call $f (i32.const 0)))
    (call $p32 (call $f (i32.const 1))))
)
