;; area: control
;; expect: exit
;; wat2wasm: --debug-names
;; A name section (from --debug-names) with names that are not C identifiers or that look
;; like the translator's own (main, _start, w2c_memory), exports with odd names, a global
;; and a local with punctuation in their names.
(module
  ;;@print
  (memory (export "memory") 1)
  (type $v_i (func (result i32)))
  (table 2 funcref)
  (global $g.x/y (mut i32) (i32.const 3))
  (func $a.b-c+d*e/f'g (result i32) (local $x!y i32)
    (local.set $x!y (i32.const 4)) (i32.add (local.get $x!y) (global.get $g.x/y)))
  (func $main (result i32) (i32.const 1))
  (func $_start (result i32) (i32.const 2))
  (func $w2c_memory (result i32) (i32.const 5))
  (elem (i32.const 0) $main $w2c_memory)
  (func (export "_start") (export "a b") (export "") (export "main") (export "w2c_x")
    (call $p32 (call $a.b-c+d*e/f'g))
    (call $p32 (call $_start))
    (call $p32 (call $main))
    (call $p32 (call_indirect (type $v_i) (i32.const 1)))
    (call $p32 (call_indirect (type $v_i) (i32.const 0))))
)
