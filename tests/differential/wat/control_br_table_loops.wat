;; area: control
;; expect: exit
;; br_table whose targets are loop headers (backward branches) and blocks: a small state
;; machine that walks a sequence of states stored in memory.
(module
  ;;@print
  (memory (export "memory") 1)
  (data (i32.const 1024) "\00\01\02\01\00\02\02\01\00\03\01\00\09")
  (func (export "_start") (local $pc i32) (local $a i32) (local $b i32) (local $c i32)
    (block $halt
      (loop $s0
        (loop $s1
          (loop $s2
            (local.set $pc (i32.add (local.get $pc) (i32.const 1)))
            (br_table $s0 $s1 $s2 $halt (i32.load8_u offset=1023 (local.get $pc))))
          ;; falls out of $s2 only by its end; never reached
          (unreachable))
        (unreachable)))
    (call $p32 (local.get $pc))
    ;; the same walk counting visits per state
    (local.set $pc (i32.const 0))
    (block $halt
      (loop $top
        (block $d3 (block $d2 (block $d1 (block $d0
          (local.set $pc (i32.add (local.get $pc) (i32.const 1)))
          (br_table $d0 $d1 $d2 $halt $halt (i32.load8_u offset=1023 (local.get $pc))))
          (local.set $a (i32.add (local.get $a) (i32.const 1))) (br $top))
          (local.set $b (i32.add (local.get $b) (i32.const 1))) (br $top))
          (local.set $c (i32.add (local.get $c) (i32.const 1))) (br $top))
        (unreachable)))
    (call $p32 (local.get $a)) (call $p32 (local.get $b)) (call $p32 (local.get $c)) (call $p32 (local.get $pc)))
)
