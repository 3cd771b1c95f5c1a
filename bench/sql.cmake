# The sql tool against the same SQLite built natively (bench/bench_sql.cc).
if(MOAT_HAVE_SQL_TOOL)
  add_executable(bench_sql bench_sql.cc)
  target_link_libraries(bench_sql PRIVATE moat_interaction)
  target_include_directories(bench_sql PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_compile_definitions(bench_sql PRIVATE
    MOAT_GUEST_DIR="${MOAT_GUEST_DIR}"
    MOAT_TOOLS_DIR="${MOAT_TOOLS_DIR}"
    MOAT_NATIVE_SQLSHELL="$<TARGET_FILE:native_sqlshell>")
  set_target_properties(bench_sql PROPERTIES ENABLE_EXPORTS ON)
  add_dependencies(bench_sql moat-translator sql_tool sqlshell_wasm native_sqlshell)
endif()
