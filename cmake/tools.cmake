# Built-in tools (guests/tools/, contract in docs/tools.md): wasm32-wasi commands in C++
# on Debian's libc++ for wasm32 and nlohmann/json, built without exceptions.
#   build/tools/raw/NAME.wasm   the plain module
#   build/tools/NAME.wasm       the module the registry loads, with guests/tools/
#                               NAME.manifest.json embedded as custom section
#                               `moat.manifest` by `moat tools pack` (which checks it).
# Linked without -O so clang never runs wasm-opt behind our back (as cmake/guests.cmake).
# The stack goes first with 1 MiB (wasm-ld's default is 64 KiB above the data): an overflow
# then traps at address 0 instead of silently overwriting the heap.
find_program(MOAT_WASM_CXX NAMES clang++-16 REQUIRED)

set(MOAT_TOOLS_DIR ${CMAKE_BINARY_DIR}/tools)
set(_tools_raw ${MOAT_TOOLS_DIR}/raw)
set(_tools_obj ${MOAT_TOOLS_DIR}/obj)
set(_tools_inc ${MOAT_TOOLS_DIR}/include)
file(MAKE_DIRECTORY ${_tools_raw} ${_tools_obj} ${_tools_inc})
# nlohmann/json's and RapidJSON's headers without the rest of /usr/include (which is for
# the host). RapidJSON reads the arguments (toolkit.cc); nlohmann/json holds and writes JSON.
foreach(_lib nlohmann rapidjson)
  if(NOT EXISTS /usr/include/${_lib})
    message(FATAL_ERROR "/usr/include/${_lib} is missing: run scripts/setup.sh")
  endif()
  if(NOT EXISTS ${_tools_inc}/${_lib})
    file(CREATE_LINK /usr/include/${_lib} ${_tools_inc}/${_lib} SYMBOLIC)
  endif()
endforeach()

set(MOAT_TOOLS_CXXFLAGS
  --target=wasm32-wasi --sysroot=/usr -std=c++20 -O2 -mbulk-memory -Wall -Wextra -Wno-unused-parameter
  -fno-exceptions -DJSON_NOEXCEPTION -DJSON_HAS_FILESYSTEM=0 -DJSON_HAS_EXPERIMENTAL_FILESYSTEM=0
  -isystem /usr/lib/llvm-16/include/wasm32-wasi/c++/v1 -isystem ${_tools_inc}
  -I${CMAKE_SOURCE_DIR}/guests/include)

set(MOAT_BUILTIN_TOOLS
  read_file write_file edit_file apply_patch list_dir glob grep move delete make_dir http_fetch)

function(_moat_tool_object name)
  set(src ${CMAKE_SOURCE_DIR}/guests/tools/${name}.cc)
  set(obj ${_tools_obj}/${name}.o)
  add_custom_command(OUTPUT ${obj}
    COMMAND ${MOAT_WASM_CXX} ${MOAT_TOOLS_CXXFLAGS} -MD -MF ${obj}.d -c ${src} -o ${obj}
    DEPENDS ${src}
    DEPFILE ${obj}.d
    COMMENT "tool object ${name}.o")
endfunction()

_moat_tool_object(toolkit)
set(_tools_outputs "")
foreach(tool IN LISTS MOAT_BUILTIN_TOOLS)
  _moat_tool_object(${tool})
  set(raw ${_tools_raw}/${tool}.wasm)
  set(out ${MOAT_TOOLS_DIR}/${tool}.wasm)
  set(manifest ${CMAKE_SOURCE_DIR}/guests/tools/${tool}.manifest.json)
  add_custom_command(OUTPUT ${raw}
    COMMAND ${MOAT_WASM_CXX} --target=wasm32-wasi --sysroot=/usr
            ${_tools_obj}/${tool}.o ${_tools_obj}/toolkit.o -o ${raw} -Wl,--strip-debug
            -Wl,--stack-first -Wl,-z,stack-size=1048576
    DEPENDS ${_tools_obj}/${tool}.o ${_tools_obj}/toolkit.o
    COMMENT "tool ${tool}.wasm (raw)")
  add_custom_command(OUTPUT ${out}
    COMMAND $<TARGET_FILE:moat> tools pack ${raw} --manifest ${manifest} -o ${out}
    DEPENDS ${raw} ${manifest} moat
    COMMENT "tool ${tool}.wasm (manifest embedded)")
  list(APPEND _tools_outputs ${out})
endforeach()

add_custom_target(builtin_tools ALL DEPENDS ${_tools_outputs})
