(module
  (import "moat" "fuel_exhausted" (func $f))
  (memory (export "memory") 1)
  (func (export "_start") (call $f)))
