(module
  (func $f (return_call $g))
  (func $g)
  (func (export "_start") (call $f)))
