# The built-in `js` tool (guests/tools/js.cc): QuickJS 2021-03-27 from third_party/quickjs
# (scripts/fetch_third_party.sh; never committed) for wasm32-wasi, packed like the other
# built-in tools (cmake/tools.cmake), and the same sources built natively as
# `native_js`, the reference bench/bench_js.cc compares it with.
#   build/tools/js.wasm     the tool
#   build/native_js         js.cc with MOAT_JS_NATIVE: arguments on stdin, result on stdout
# Skipped when the sources are missing, and in sanitizer builds (which run only the
# execution tests).
set(MOAT_HAVE_JS_TOOL OFF)
if(MOAT_SANITIZE OR MOAT_TSAN)
  return()
endif()
set(MOAT_QUICKJS_DIR ${CMAKE_SOURCE_DIR}/third_party/quickjs)
set(_qjs_sources quickjs libregexp libunicode cutils)
foreach(src IN LISTS _qjs_sources)
  if(NOT EXISTS ${MOAT_QUICKJS_DIR}/${src}.c)
    message(WARNING "third_party/quickjs is missing: the js tool, native_js, tool_js_test and "
                    "bench_js are skipped. Run scripts/fetch_third_party.sh.")
    return()
  endif()
endforeach()
set(MOAT_HAVE_JS_TOOL ON)

file(READ ${MOAT_QUICKJS_DIR}/VERSION _qjs_version)
string(STRIP "${_qjs_version}" _qjs_version)
# No BigInt (CONFIG_BIGNUM, libbf): not needed for tools, and a smaller module.
# Asserts stay on, on both sides: a broken invariant traps instead of going on.
set(MOAT_QUICKJS_DEFS -DCONFIG_VERSION="${_qjs_version}" -UNDEBUG)

# wasm32-wasi. quickjs.c turns on Atomics (pthreads, which wasi-libc lacks) for every
# platform but Emscripten, so it is built as Emscripten is: no Atomics, a switch for
# opcode dispatch (wasm has no computed goto; clang would lower it to a switch anyway),
# and no malloc_usable_size in its default allocator (js.cc brings its own). The stack
# check Emscripten turns off is turned back on: it makes deep recursion a JS error.
# wasm has only round-to-nearest: fesetround refuses the two directed modes QuickJS asks
# for, so toFixed/toPrecision round exact ties to even rather than away from zero.
# -O2. (-Os makes a module whose unmetered C translation fits moat's 8 MiB limit for
# cc -O2, but the metered one, what tools run, is compiled at -O1 either way, and with -Os
# the parser's recursion on '((((...' ran out of native stack before QuickJS's check on
# the shadow stack fired.)
set(_qjs_wasm_flags --target=wasm32-wasi --sysroot=/usr -O2 -mbulk-memory -w ${MOAT_QUICKJS_DEFS}
    -DEMSCRIPTEN -DCONFIG_STACK_CHECK -DFE_DOWNWARD=0x400 -DFE_UPWARD=0x800)
set(_js_obj ${MOAT_TOOLS_DIR}/obj/js)
file(MAKE_DIRECTORY ${_js_obj})
set(_js_objects "")
foreach(src IN LISTS _qjs_sources)
  set(obj ${_js_obj}/${src}.o)
  add_custom_command(OUTPUT ${obj}
    COMMAND ${MOAT_WASM_CC} ${_qjs_wasm_flags} -c ${MOAT_QUICKJS_DIR}/${src}.c -o ${obj}
    DEPENDS ${MOAT_QUICKJS_DIR}/${src}.c
    COMMENT "tool object js/${src}.o (QuickJS, wasm32-wasi)"
    VERBATIM)
  list(APPEND _js_objects ${obj})
endforeach()
set(_js_main_obj ${_js_obj}/js.o)
add_custom_command(OUTPUT ${_js_main_obj}
  COMMAND ${MOAT_WASM_CXX} ${MOAT_TOOLS_CXXFLAGS} -I${MOAT_QUICKJS_DIR}
          -MD -MF ${_js_main_obj}.d -c ${CMAKE_SOURCE_DIR}/guests/tools/js.cc -o ${_js_main_obj}
  DEPENDS ${CMAKE_SOURCE_DIR}/guests/tools/js.cc
  DEPFILE ${_js_main_obj}.d
  COMMENT "tool object js.o")

# The shadow stack goes first (see cmake/tools.cmake) with 4 MiB: js.cc lets QuickJS use
# 1 MiB of it before "stack overflow", and C code below its checks (the regexp engine,
# JSON, libc) keeps ample room.
set(_js_raw ${MOAT_TOOLS_DIR}/raw/js.wasm)
set(_js_out ${MOAT_TOOLS_DIR}/js.wasm)
set(_js_manifest ${CMAKE_SOURCE_DIR}/guests/tools/js.manifest.json)
add_custom_command(OUTPUT ${_js_raw}
  COMMAND ${MOAT_WASM_CXX} --target=wasm32-wasi --sysroot=/usr
          ${_js_main_obj} ${MOAT_TOOLS_DIR}/obj/toolkit.o ${_js_objects} -o ${_js_raw}
          -Wl,--strip-debug -Wl,--stack-first -Wl,-z,stack-size=4194304
  DEPENDS ${_js_main_obj} ${MOAT_TOOLS_DIR}/obj/toolkit.o ${_js_objects}
  COMMENT "tool js.wasm (raw)")
add_custom_command(OUTPUT ${_js_out}
  COMMAND $<TARGET_FILE:moat> tools pack ${_js_raw} --manifest ${_js_manifest} -o ${_js_out}
  DEPENDS ${_js_raw} ${_js_manifest} moat
  COMMENT "tool js.wasm (manifest embedded)")
add_custom_target(js_tool ALL DEPENDS ${_js_out})
add_dependencies(builtin_tools js_tool)

# Natively, QuickJS as its own Makefile configures it for Linux (Atomics, computed goto),
# at -O2.
set(_qjs_native_sources "")
foreach(src IN LISTS _qjs_sources)
  list(APPEND _qjs_native_sources ${MOAT_QUICKJS_DIR}/${src}.c)
endforeach()
add_library(native_quickjs STATIC ${_qjs_native_sources})
target_compile_options(native_quickjs PRIVATE -O2 -w ${MOAT_QUICKJS_DEFS})
target_compile_definitions(native_quickjs PRIVATE _GNU_SOURCE)
target_link_libraries(native_quickjs PUBLIC m Threads::Threads)
add_executable(native_js guests/tools/js.cc)
target_include_directories(native_js SYSTEM PRIVATE ${MOAT_QUICKJS_DIR})
target_include_directories(native_js PRIVATE ${CMAKE_SOURCE_DIR}/guests/tools)
target_compile_definitions(native_js PRIVATE MOAT_JS_NATIVE JSON_NOEXCEPTION)
target_compile_options(native_js PRIVATE -O2 -fno-exceptions ${MOAT_WARNINGS})
target_link_libraries(native_js PRIVATE native_quickjs nlohmann_json::nlohmann_json)

# The same again with the wasm side's configuration (no Atomics, switch dispatch), so the
# benchmark can tell the sandbox's cost from the configuration's.
add_library(native_quickjs_wasm_config STATIC ${_qjs_native_sources})
target_compile_options(native_quickjs_wasm_config PRIVATE -O2 -w ${MOAT_QUICKJS_DEFS})
target_compile_definitions(native_quickjs_wasm_config PRIVATE
  _GNU_SOURCE EMSCRIPTEN CONFIG_STACK_CHECK)
target_link_libraries(native_quickjs_wasm_config PUBLIC m)
add_executable(native_js_wasm_config guests/tools/js.cc)
target_include_directories(native_js_wasm_config SYSTEM PRIVATE ${MOAT_QUICKJS_DIR})
target_include_directories(native_js_wasm_config PRIVATE ${CMAKE_SOURCE_DIR}/guests/tools)
target_compile_definitions(native_js_wasm_config PRIVATE MOAT_JS_NATIVE JSON_NOEXCEPTION)
target_compile_options(native_js_wasm_config PRIVATE -O2 -fno-exceptions ${MOAT_WARNINGS})
target_link_libraries(native_js_wasm_config PRIVATE native_quickjs_wasm_config
                      nlohmann_json::nlohmann_json)
