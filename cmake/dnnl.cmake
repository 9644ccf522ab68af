# dnnl.cmake - oneDNN (Debian libdnnl-dev) for the CPU kernel candidates in
# src/backend/cpu/dnnl_*.c. MIXRT_DNNL is switched ON at the first configure when the
# library and /usr/include/dnnl.h are found (MIXRT_DNNL_AUTO=OFF keeps the option as given);
# later configures keep whatever the cache says. The sources see MIXRT_HAVE_DNNL.
find_library(MIXRT_DNNL_LIBRARY NAMES dnnl)
find_path(MIXRT_DNNL_INCLUDE_DIR NAMES dnnl.h)
option(MIXRT_DNNL_AUTO "Turn MIXRT_DNNL on at the first configure when oneDNN is found" ON)
set(_mixrt_dnnl_found OFF)
if(MIXRT_DNNL_LIBRARY AND MIXRT_DNNL_INCLUDE_DIR)
  set(_mixrt_dnnl_found ON)
endif()
# option() in CMakeLists.txt already cached OFF; flip it once (the marker makes it once), so
# a later -DMIXRT_DNNL=OFF sticks.
if(NOT DEFINED MIXRT_DNNL_DEFAULT_APPLIED)
  if(MIXRT_DNNL_AUTO AND _mixrt_dnnl_found AND NOT MIXRT_DNNL)
    set(MIXRT_DNNL ON CACHE BOOL "Use oneDNN for CPU kernels" FORCE)
  endif()
  set(MIXRT_DNNL_DEFAULT_APPLIED ON CACHE INTERNAL "MIXRT_DNNL's found-default was applied")
endif()

set(MIXRT_PC_LIBS_PRIVATE "")
if(MIXRT_DNNL)
  if(NOT _mixrt_dnnl_found)
    message(FATAL_ERROR "MIXRT_DNNL is ON but oneDNN was not found (install libdnnl-dev, or -DMIXRT_DNNL=OFF)")
  endif()
  message(STATUS "mixrt: oneDNN kernels ON (${MIXRT_DNNL_LIBRARY})")
  find_package(Threads REQUIRED)
  # The library sources, and the tests through mixrt_static (build tree only), see the macro.
  target_compile_definitions(mixrt_obj PUBLIC MIXRT_HAVE_DNNL)
  target_compile_definitions(mixrt_static PUBLIC $<BUILD_INTERFACE:MIXRT_HAVE_DNNL>)
  target_include_directories(mixrt_obj PRIVATE ${MIXRT_DNNL_INCLUDE_DIR})
  target_link_libraries(mixrt_obj PUBLIC ${MIXRT_DNNL_LIBRARY} Threads::Threads)
  target_link_libraries(mixrt_static PUBLIC ${MIXRT_DNNL_LIBRARY} Threads::Threads)
  target_link_libraries(mixrt_shared PUBLIC ${MIXRT_DNNL_LIBRARY} Threads::Threads)
  # pkg-config: static consumers need -ldnnl, but Debian ships no libdnnl.a, so a fully static
  # link (-static) could not find it; name it only where the archive exists.
  find_library(MIXRT_DNNL_STATIC_LIBRARY NAMES libdnnl.a)
  if(MIXRT_DNNL_STATIC_LIBRARY)
    set(MIXRT_PC_LIBS_PRIVATE "-ldnnl -lgomp -lstdc++ -lpthread")
  endif()
else()
  message(STATUS "mixrt: oneDNN kernels OFF")
endif()
