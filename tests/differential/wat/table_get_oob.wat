;; area: table
;; expect: trap
;; A table access out of bounds, of a dropped segment, or a failing call_indirect traps.
(module
  ;;@print
  (memory (export "memory") 1)
  (type $v_i (func (result i32)))
  (type $i_i (func (param i32) (result i32)))
  (table $t 4 funcref)
  (func $f (result i32) (i32.const 1))
  (elem (i32.const 0) func $f $f)
  (elem $p func $f $f)
  (func (export "_start")
    (call $before)
    (call $p32 (call_indirect $t (type $v_i) (i32.const 1)))
    (drop (table.get $t (i32.const 4)))
    (call $before))
)
