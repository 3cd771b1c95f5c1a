;; memory.fill of 16 MiB in an endless loop: one instruction doing much work. Bulk
;; operations are charged by length, so fuel and the deadline still stop it.
(module
  (memory (export "memory") 256)
  (func (export "_start")
    (loop $l
      (memory.fill (i32.const 0) (i32.const 1) (i32.const 0x1000000))
      (br $l))))
