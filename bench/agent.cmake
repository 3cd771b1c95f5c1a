# The agent loop's own cost per step, and a turn's calls at once (bench/bench_agent.cc); the
# front door under load: ToolGate from 8 threads, 8 sessions at once (bench/bench_front_door.cc).
function(moat_agent_bench name)
  add_executable(${name} ${name}.cc)
  target_link_libraries(${name} PRIVATE moat_interaction)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_compile_definitions(${name} PRIVATE
    MOAT_GUEST_DIR="${MOAT_GUEST_DIR}"
    MOAT_TOOLS_DIR="${MOAT_TOOLS_DIR}")
  set_target_properties(${name} PROPERTIES ENABLE_EXPORTS ON)
  add_dependencies(${name} moat-translator guests builtin_tools)
endfunction()
moat_agent_bench(bench_agent)
moat_agent_bench(bench_front_door)
moat_agent_bench(bench_checkpoints)
# Undo of 1,000 changed files, beside writing them fresh (bench/bench_undo.cc).
moat_agent_bench(bench_undo)
