# The agent loop's own cost per step, and a turn's calls at once (bench/bench_agent.cc).
add_executable(bench_agent bench_agent.cc)
target_link_libraries(bench_agent PRIVATE moat_interaction)
target_include_directories(bench_agent PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_compile_definitions(bench_agent PRIVATE
  MOAT_GUEST_DIR="${MOAT_GUEST_DIR}"
  MOAT_TOOLS_DIR="${MOAT_TOOLS_DIR}")
set_target_properties(bench_agent PROPERTIES ENABLE_EXPORTS ON)
add_dependencies(bench_agent moat-translator guests builtin_tools)

# The front door under load: ToolGate from 8 threads, 8 sessions at once
# (bench/bench_front_door.cc).
add_executable(bench_front_door bench_front_door.cc)
target_link_libraries(bench_front_door PRIVATE moat_interaction)
target_include_directories(bench_front_door PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_compile_definitions(bench_front_door PRIVATE
  MOAT_GUEST_DIR="${MOAT_GUEST_DIR}"
  MOAT_TOOLS_DIR="${MOAT_TOOLS_DIR}")
set_target_properties(bench_front_door PROPERTIES ENABLE_EXPORTS ON)
add_dependencies(bench_front_door moat-translator guests builtin_tools)
