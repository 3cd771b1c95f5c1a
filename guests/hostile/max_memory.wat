;; Asks for all 65536 pages (4 GiB) up front, more than any limit moat grants.
(module
  (memory 65536)
  (func (export "_start")
    (i32.store (i32.const 0x100000) (i32.const 0x42))))
