# The grep tool against GNU grep on a generated ~50 MB source tree (bench/bench_grep.cc).
add_executable(bench_grep bench_grep.cc)
target_link_libraries(bench_grep PRIVATE moat_interaction)
target_include_directories(bench_grep PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_compile_definitions(bench_grep PRIVATE MOAT_TOOLS_DIR="${MOAT_TOOLS_DIR}")
set_target_properties(bench_grep PROPERTIES ENABLE_EXPORTS ON)
add_dependencies(bench_grep moat-translator builtin_tools)
