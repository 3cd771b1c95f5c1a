# bench_net: a guest's HTTP request against the same request made natively with libcurl.
add_executable(bench_net bench_net.cc)
target_link_libraries(bench_net PRIVATE moat_interaction moat_net CURL::libcurl PkgConfig::HTTPLIB)
target_include_directories(bench_net PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_compile_definitions(bench_net PRIVATE MOAT_GUEST_DIR="${MOAT_GUEST_DIR}")
set_target_properties(bench_net PROPERTIES ENABLE_EXPORTS ON)
add_dependencies(bench_net guests moat-translator)
