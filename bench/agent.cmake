# The agent loop's own cost per step, and a turn's calls at once (bench/bench_agent.cc).
add_executable(bench_agent bench_agent.cc)
target_link_libraries(bench_agent PRIVATE moat_interaction)
target_include_directories(bench_agent PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_compile_definitions(bench_agent PRIVATE
  MOAT_GUEST_DIR="${MOAT_GUEST_DIR}"
  MOAT_TOOLS_DIR="${MOAT_TOOLS_DIR}")
set_target_properties(bench_agent PROPERTIES ENABLE_EXPORTS ON)
add_dependencies(bench_agent moat-translator guests builtin_tools)
