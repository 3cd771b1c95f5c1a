;; area: host
;; expect: exit
;; fd_write's errors as both hosts give them: an iovec or buffer past the end of memory is
;; EFAULT (21), an unknown fd is EBADF (8), zero iovecs write nothing; nwritten is stored.
(module
  ;;@print
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 1024) (i32.const 65530))
    (i32.store (i32.const 1028) (i32.const 10))
    (call $p32 (call $fd_write (i32.const 1) (i32.const 1024) (i32.const 1) (i32.const 1040)))
    (call $p32 (call $fd_write (i32.const 1) (i32.const 65532) (i32.const 1) (i32.const 1040)))
    (call $p32 (call $fd_write (i32.const 7) (i32.const 1024) (i32.const 1) (i32.const 1040)))
    (i32.store (i32.const 1040) (i32.const 99))
    (call $p32 (call $fd_write (i32.const 1) (i32.const 1024) (i32.const 0) (i32.const 1040)))
    (call $p32 (i32.load (i32.const 1040)))
    (i32.store (i32.const 1024) (i32.const 65530))
    (i32.store (i32.const 1028) (i32.const 6))
    (i64.store (i32.const 65528) (i64.const 0x0a3938373635ffff))
    (call $p32 (call $fd_write (i32.const 1) (i32.const 1024) (i32.const 1) (i32.const 1040)))
    (call $p32 (i32.load (i32.const 1040))))
)
