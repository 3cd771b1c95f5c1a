# The `js` tool (cmake/tool_js.cmake) through the registry and the sandbox. Compiling
# js.wasm through moat's pipeline takes about 40 s of CPU the first time (then cached).
if(NOT MOAT_HAVE_JS_TOOL)
  return()
endif()
moat_test(tool_js_test tool_js_test.cc)
set_tests_properties(tool_js_test PROPERTIES LABELS "tools" TIMEOUT 900)
add_dependencies(tool_js_test js_tool)
target_compile_definitions(tool_js_test PRIVATE MOAT_TOOLS_DIR="${MOAT_TOOLS_DIR}")
