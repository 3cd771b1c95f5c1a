;; Asks for 2000 pages (125 MiB) up front: refused under a 64 MiB limit.
(module
  (memory (export "memory") 2000)
  (func (export "_start")))
