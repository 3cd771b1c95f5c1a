# The built-in `sql` tool (guests/tools/sql.cc): the SQLite amalgamation from
# third_party/sqlite3 (scripts/fetch_third_party.sh; never committed) linked into a tool
# packed like the others (cmake/tools.cmake). The SQLite object is the one
# cmake/third_party.cmake builds for sqlshell.wasm (-O2, MOAT_SQLITE_DEFS, wasi-emulated
# mman/signal/process-clocks/getpid), so both guests run the same SQLite; bench/bench_sql.cc
# compares the tool with native_sqlshell, the same SQLite built natively.
#   build/tools/sql.wasm
# Skipped when SQLite is missing, and in sanitizer builds (which run only the execution
# tests).
set(MOAT_HAVE_SQL_TOOL OFF)
if(MOAT_SANITIZE OR MOAT_TSAN)
  return()
endif()
if(NOT MOAT_HAVE_SQLSHELL)
  message(WARNING "third_party/sqlite3 is missing: the sql tool, tool_sql_test and bench_sql "
                  "are skipped. Run scripts/fetch_third_party.sh.")
  return()
endif()
set(MOAT_HAVE_SQL_TOOL ON)

set(_sql_src ${CMAKE_SOURCE_DIR}/guests/tools/sql.cc)
set(_sql_obj ${MOAT_TOOLS_DIR}/obj/sql.o)
set(_sql_sqlite_o ${MOAT_GUEST_DIR}/sqlite3.o)  # from cmake/third_party.cmake
add_custom_command(OUTPUT ${_sql_obj}
  COMMAND ${MOAT_WASM_CXX} ${MOAT_TOOLS_CXXFLAGS} ${MOAT_SQLITE_DEFS} -isystem ${MOAT_SQLITE_DIR}
          -MD -MF ${_sql_obj}.d -c ${_sql_src} -o ${_sql_obj}
  DEPENDS ${_sql_src}
  DEPFILE ${_sql_obj}.d
  COMMENT "tool object sql.o")

# The same wasi-emulated libraries as sqlshell.wasm; the stack goes first with 1 MiB
# (see cmake/tools.cmake): SQLite recurses on nested expressions and subqueries.
set(_sql_libs)
foreach(lib mman signal process-clocks getpid)
  list(APPEND _sql_libs -lwasi-emulated-${lib})
endforeach()
set(_sql_raw ${MOAT_TOOLS_DIR}/raw/sql.wasm)
set(_sql_out ${MOAT_TOOLS_DIR}/sql.wasm)
set(_sql_manifest ${CMAKE_SOURCE_DIR}/guests/tools/sql.manifest.json)
add_custom_command(OUTPUT ${_sql_raw}
  COMMAND ${MOAT_WASM_CXX} --target=wasm32-wasi --sysroot=/usr
          ${_sql_obj} ${MOAT_TOOLS_DIR}/obj/toolkit.o ${_sql_sqlite_o} ${_sql_libs} -o ${_sql_raw}
          -Wl,--strip-debug -Wl,--stack-first -Wl,-z,stack-size=1048576
  DEPENDS ${_sql_obj} ${MOAT_TOOLS_DIR}/obj/toolkit.o ${_sql_sqlite_o}
  COMMENT "tool sql.wasm (raw)")
add_custom_command(OUTPUT ${_sql_out}
  COMMAND $<TARGET_FILE:moat> tools pack ${_sql_raw} --manifest ${_sql_manifest} -o ${_sql_out}
  DEPENDS ${_sql_raw} ${_sql_manifest} moat
  COMMENT "tool sql.wasm (manifest embedded)")
add_custom_target(sql_tool ALL DEPENDS ${_sql_out})
add_dependencies(builtin_tools sql_tool)
