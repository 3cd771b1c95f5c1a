# Tool call latency: `moat call read_file` as a whole process, and calls through the
# registry in process (bench/bench_tools.cc).
add_executable(bench_tools bench_tools.cc)
target_link_libraries(bench_tools PRIVATE moat_interaction)
target_include_directories(bench_tools PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_compile_definitions(bench_tools PRIVATE
  MOAT_GUEST_DIR="${MOAT_GUEST_DIR}"
  MOAT_TOOLS_DIR="${MOAT_TOOLS_DIR}"
  MOAT_BINARY="$<TARGET_FILE:moat>")
set_target_properties(bench_tools PROPERTIES ENABLE_EXPORTS ON)
add_dependencies(bench_tools moat moat-translator guests builtin_tools)
