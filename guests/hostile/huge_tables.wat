;; Eight tables of 10M entries (about 2 GB of host memory): tables count against the
;; memory limit and the total table limit, so instantiation is refused.
(module
  (table $t0 10000000 funcref) (table $t1 10000000 funcref)
  (table $t2 10000000 funcref) (table $t3 10000000 funcref)
  (table $t4 10000000 funcref) (table $t5 10000000 funcref)
  (table $t6 10000000 funcref) (table $t7 10000000 funcref)
  (func (export "_start")
    (table.fill $t7 (i32.const 0) (ref.null func) (i32.const 10000000))))
