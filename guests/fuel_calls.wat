;; Fuel for calls to small leaf functions (tests/runtime_test.cc). $direct is reached only
;; by direct calls, so moat's fuel pass leaves it uninstrumented and each call site pays
;; its 13 instructions; $indirect sits in the table and pays for itself. Each is called
;; 100,000 times: 4,900,000 instructions run in the two loops, and fuel must cover them.
(module
  (type $t (func (param i32) (result i32)))
  (memory (export "memory") 1)
  (table 1 funcref)
  (elem (i32.const 0) $indirect)
  (func $direct (type $t)
    local.get 0 i32.const 3 i32.mul i32.const 7 i32.add i32.const 5 i32.xor
    i32.const 1 i32.shl i32.const 9 i32.sub i32.const 2 i32.rotl)
  (func $indirect (type $t)
    local.get 0 i32.const 3 i32.mul i32.const 7 i32.add i32.const 5 i32.xor
    i32.const 1 i32.shl i32.const 9 i32.sub i32.const 2 i32.rotl)
  (func (export "_start") (local $i i32) (local $acc i32)
    ;; 11 instructions here and 13 in $direct per iteration
    (loop $a
      local.get $acc
      call $direct
      local.set $acc
      local.get $i i32.const 1 i32.add local.set $i
      local.get $i i32.const 100000 i32.lt_u
      br_if $a)
    i32.const 0
    local.set $i
    ;; 12 instructions here and 13 in $indirect per iteration
    (loop $b
      local.get $acc
      i32.const 0
      call_indirect (type $t)
      local.set $acc
      local.get $i i32.const 1 i32.add local.set $i
      local.get $i i32.const 100000 i32.lt_u
      br_if $b)
    i32.const 0
    local.get $acc
    i32.store))
