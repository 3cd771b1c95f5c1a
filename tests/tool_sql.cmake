# The built-in sql tool (cmake/tool_sql.cmake) through the real sandbox.
if(MOAT_HAVE_SQL_TOOL)
  moat_test(tool_sql_test tool_sql_test.cc)
  target_compile_definitions(tool_sql_test PRIVATE MOAT_TOOLS_DIR="${MOAT_TOOLS_DIR}")
  add_dependencies(tool_sql_test sql_tool)
  set_tests_properties(tool_sql_test PROPERTIES LABELS "tools" TIMEOUT 900)
endif()
