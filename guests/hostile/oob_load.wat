;; Loads far beyond the end of a one-page memory.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (i32.load offset=16 (i32.const 0xfffffff0)))))
