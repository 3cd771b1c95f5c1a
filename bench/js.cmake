# The `js` tool against the same QuickJS sources built natively (bench/bench_js.cc):
# a CPU-bound script through Registry::Call in process vs native_js (cmake/tool_js.cmake).
if(NOT MOAT_HAVE_JS_TOOL)
  return()
endif()
add_executable(bench_js bench_js.cc)
target_link_libraries(bench_js PRIVATE moat_interaction)
target_include_directories(bench_js PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_compile_definitions(bench_js PRIVATE
  MOAT_TOOLS_DIR="${MOAT_TOOLS_DIR}"
  MOAT_NATIVE_JS="$<TARGET_FILE:native_js>"
  MOAT_NATIVE_JS_WASM_CONFIG="$<TARGET_FILE:native_js_wasm_config>")
set_target_properties(bench_js PROPERTIES ENABLE_EXPORTS ON)
add_dependencies(bench_js moat-translator js_tool native_js native_js_wasm_config)
