# Guest programs (wasm32-wasi) built from sources in the repo with clang-16 and wat2wasm.
# Linked without -O so clang never runs wasm-opt behind our back (see docs).
find_program(MOAT_WASM_CC NAMES clang-16 REQUIRED)
find_program(MOAT_WAT2WASM NAMES wat2wasm REQUIRED)
set(MOAT_GUEST_DIR ${CMAKE_BINARY_DIR}/guests)
file(MAKE_DIRECTORY ${MOAT_GUEST_DIR})
set_property(GLOBAL PROPERTY MOAT_GUEST_FILES "")

function(moat_guest_c name src)
  set(out ${MOAT_GUEST_DIR}/${name}.wasm)
  add_custom_command(OUTPUT ${out}
    COMMAND ${MOAT_WASM_CC} --target=wasm32-wasi --sysroot=/usr -O2 ${ARGN}
            -MD -MF ${MOAT_GUEST_DIR}/${name}.d
            -c ${CMAKE_SOURCE_DIR}/${src} -o ${MOAT_GUEST_DIR}/${name}.o
    COMMAND ${MOAT_WASM_CC} --target=wasm32-wasi --sysroot=/usr
            ${MOAT_GUEST_DIR}/${name}.o -o ${out} -Wl,--strip-debug
    DEPENDS ${CMAKE_SOURCE_DIR}/${src}
    DEPFILE ${MOAT_GUEST_DIR}/${name}.d  # headers the source includes
    COMMENT "guest ${name}.wasm")
  set_property(GLOBAL APPEND PROPERTY MOAT_GUEST_FILES ${out})
endfunction()

function(moat_guest_wat name src)
  set(out ${MOAT_GUEST_DIR}/${name}.wasm)
  add_custom_command(OUTPUT ${out}
    COMMAND ${MOAT_WAT2WASM} ${ARGN} ${CMAKE_SOURCE_DIR}/${src} -o ${out}
    DEPENDS ${CMAKE_SOURCE_DIR}/${src}
    COMMENT "guest ${name}.wasm")
  set_property(GLOBAL APPEND PROPERTY MOAT_GUEST_FILES ${out})
endfunction()

moat_guest_c(hello guests/hello.c)
moat_guest_c(sha256 guests/sha256.c)
moat_guest_c(echo guests/echo.c)
moat_guest_c(sleep guests/sleep.c)
moat_guest_c(clock_random guests/clock_random.c)
moat_guest_c(infinite_loop guests/hostile/infinite_loop.c)
moat_guest_c(infinite_recursion guests/hostile/infinite_recursion.c)
moat_guest_c(memory_bomb guests/hostile/memory_bomb.c)
moat_guest_c(div_zero guests/hostile/div_zero.c)
moat_guest_c(output_flood guests/hostile/output_flood.c)
moat_guest_c(zero_writes guests/hostile/zero_writes.c)
moat_guest_c(read_stdin guests/hostile/read_stdin.c)
moat_guest_wat(deep_recursion guests/hostile/deep_recursion.wat)
moat_guest_wat(dirty_memory guests/hostile/dirty_memory.wat)
moat_guest_wat(oob_load guests/hostile/oob_load.wat)
moat_guest_wat(fill_loop guests/hostile/fill_loop.wat)
moat_guest_wat(fuel_calls guests/fuel_calls.wat)
moat_guest_wat(ref_func_table guests/ref_func_table.wat)
moat_guest_wat(import_through_table guests/import_through_table.wat)
moat_guest_wat(ref_func_without_table guests/ref_func_without_table.wat)
moat_guest_wat(huge_tables guests/hostile/huge_tables.wat)
moat_guest_wat(grow_table guests/hostile/grow_table.wat)
moat_guest_wat(max_memory guests/hostile/max_memory.wat)
moat_guest_c(recurse_then_grow guests/hostile/recurse_then_grow.c)
moat_guest_wat(oob_store guests/hostile/oob_store.wat)
moat_guest_wat(unreachable guests/hostile/unreachable.wat)
moat_guest_wat(bad_pointers guests/hostile/bad_pointers.wat)
moat_guest_wat(grow_beyond guests/hostile/grow_beyond.wat)
moat_guest_wat(big_initial_memory guests/hostile/big_initial_memory.wat)
moat_guest_wat(start_section_loop guests/hostile/start_section_loop.wat)
moat_guest_c(fsprobe guests/fs/fsprobe.c -Wno-unused-result)
# moat's own WASI preview1 conformance programs (tests/wasi_conformance_test.cc runs them).
moat_guest_c(wasi_fd_basic guests/wasi/fd_basic.c)
moat_guest_c(wasi_path_basic guests/wasi/path_basic.c)
moat_guest_c(wasi_trailing_slashes guests/wasi/trailing_slashes.c)
moat_guest_c(wasi_symlinks guests/wasi/symlinks.c)
moat_guest_c(wasi_readdir guests/wasi/readdir.c)
moat_guest_c(wasi_paths_escape guests/wasi/paths_escape.c)
moat_guest_c(wasi_misc guests/wasi/misc.c)
moat_guest_c(wasi_libc_posix guests/wasi/libc_posix.c)
# Checks the behaviours the WASI test suite (wasi-testsuite, prod/testsuite-base) tests,
# written afresh from its specs: the areas of its Rust programs, and of its C and
# AssemblyScript programs.
moat_guest_c(wasi_suite_rust_areas guests/wasi/suite_rust_areas.c)
moat_guest_c(wasi_suite_c_as_areas guests/wasi/suite_c_as_areas.c)
# Drives moat's HTTP host API (tests/guest_http_test.cc), through guests/include/moat/http.h.
moat_guest_c(http_probe guests/net/http_probe.c -I${CMAKE_SOURCE_DIR}/guests/include)
# A tool that answers by the contract, or breaks it on purpose (tests/tools_test.cc).
moat_guest_c(contract_probe guests/tools_test/contract_probe.c)
# Modules the pipeline must refuse, each for a named reason.
moat_guest_wat(uses_simd guests/invalid/uses_simd.wat)
moat_guest_wat(uses_threads guests/invalid/uses_threads.wat --enable-threads)
moat_guest_wat(uses_tail_call guests/invalid/uses_tail_call.wat --enable-tail-call)
moat_guest_wat(uses_memory64 guests/invalid/uses_memory64.wat --enable-memory64)
moat_guest_wat(uses_multi_memory guests/invalid/uses_multi_memory.wat --enable-multi-memory)
moat_guest_wat(uses_call_ref guests/invalid/uses_call_ref.wat --enable-function-references)
moat_guest_wat(unknown_import guests/invalid/unknown_import.wat)
moat_guest_wat(wrong_signature guests/invalid/wrong_signature.wat)
moat_guest_wat(reserved_import guests/invalid/reserved_import.wat)
moat_guest_wat(no_start guests/invalid/no_start.wat)

get_property(_moat_guests GLOBAL PROPERTY MOAT_GUEST_FILES)
add_custom_target(guests ALL DEPENDS ${_moat_guests})

# Native builds of the same sources, for side-by-side benchmarks.
add_executable(native_hello guests/hello.c)
target_compile_options(native_hello PRIVATE -O2)
add_executable(native_sha256 guests/sha256.c)
target_compile_options(native_sha256 PRIVATE -O2)
