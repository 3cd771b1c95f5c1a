(module
  (type $v (func))
  (memory (export "memory") 1)
  (func $f)
  (elem declare func $f)
  (func (export "_start")
    (call_ref (ref.func $f)))  ;; a typed function reference call
)
