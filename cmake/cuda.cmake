# cuda.cmake - the CUDA backend (src/backend/cuda) as its own library, libmixrt_cuda
# (static and shared). MIXRT_CUDA is switched ON at the first configure when nvcc and the
# CUDA toolkit (cudart, cuBLASLt) are found (MIXRT_CUDA_AUTO=OFF keeps the option as
# given); later configures keep what the cache says. enable_language(CUDA) runs only then.
# Kernels are built as sm_90a machine code (Hopper: H100/H200) plus compute_80 PTX that
# the driver compiles for any other GPU of compute capability 8.0 or newer.
# Without MIXRT_CUDA, mixrt_cuda_static is built from cuda_stub.c (no device is ever
# visible), so the engine and the tests link the same interface either way.
include(CheckLanguage)
option(MIXRT_CUDA_AUTO "Turn MIXRT_CUDA on at the first configure when nvcc and the CUDA toolkit are found" ON)
set(MIXRT_CUDA_DIR "${CMAKE_CURRENT_SOURCE_DIR}/src/backend/cuda")

set(_mixrt_cuda_found OFF)
if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc CACHE FILEPATH "nvcc")
endif()
check_language(CUDA)
if(CMAKE_CUDA_COMPILER)
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND AND TARGET CUDA::cublasLt AND TARGET CUDA::cudart_static)
    set(_mixrt_cuda_found ON)
  endif()
endif()
# option() in CMakeLists.txt already cached OFF; flip it once (the marker makes it once), so
# a later -DMIXRT_CUDA=OFF sticks; an explicit -DMIXRT_CUDA on the first configure is never flipped.
if(NOT DEFINED MIXRT_CUDA_DEFAULT_APPLIED)
  if(MIXRT_CUDA_AUTO AND _mixrt_cuda_found AND NOT MIXRT_CUDA AND NOT MIXRT_CUDA_USER_SET)
    set(MIXRT_CUDA ON CACHE BOOL "Build the CUDA backend" FORCE)
  endif()
  set(MIXRT_CUDA_DEFAULT_APPLIED ON CACHE INTERNAL "MIXRT_CUDA's found-default was applied")
endif()

if(MIXRT_CUDA)
  if(NOT _mixrt_cuda_found)
    message(FATAL_ERROR "MIXRT_CUDA is ON but nvcc or the CUDA toolkit (cudart, cuBLASLt) was not found "
                        "(set CMAKE_CUDA_COMPILER, or -DMIXRT_CUDA=OFF)")
  endif()
  enable_language(CUDA)
  message(STATUS "mixrt: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, CUDA ${CUDAToolkit_VERSION})")
  file(GLOB MIXRT_CUDA_SOURCES CONFIGURE_DEPENDS "${MIXRT_CUDA_DIR}/*.c" "${MIXRT_CUDA_DIR}/*.cu")
  list(FILTER MIXRT_CUDA_SOURCES EXCLUDE REGEX "/cuda_stub\\.c$")
  add_library(mixrt_cuda_obj OBJECT ${MIXRT_CUDA_SOURCES})
  # Explicit -gencode flags instead of CUDA_ARCHITECTURES: the "a" (arch-specific) target
  # needs the -gencode form.
  set_target_properties(mixrt_cuda_obj PROPERTIES POSITION_INDEPENDENT_CODE ON C_VISIBILITY_PRESET hidden
    CUDA_VISIBILITY_PRESET hidden CUDA_ARCHITECTURES OFF CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON)
  target_include_directories(mixrt_cuda_obj PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/include ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_include_directories(mixrt_cuda_obj SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
  target_compile_options(mixrt_cuda_obj PRIVATE
    $<$<COMPILE_LANGUAGE:C>:${MIXRT_WARNINGS}>
    $<$<COMPILE_LANGUAGE:CUDA>:-gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_80,code=compute_80
      -Xcompiler=-Wall>)

  add_library(mixrt_cuda_static STATIC $<TARGET_OBJECTS:mixrt_cuda_obj>)
  set_target_properties(mixrt_cuda_static PROPERTIES OUTPUT_NAME mixrt_cuda)
  target_link_libraries(mixrt_cuda_static PUBLIC mixrt_static CUDA::cudart_static CUDA::cublasLt)

  # The shared library carries the private core it uses (error recording, allocation) from
  # libmixrt.a, hidden, so it loads beside libmixrt.so; only mixrt_cuda_* is exported.
  add_library(mixrt_cuda_shared SHARED $<TARGET_OBJECTS:mixrt_cuda_obj>)
  set_target_properties(mixrt_cuda_shared PROPERTIES OUTPUT_NAME mixrt_cuda VERSION ${PROJECT_VERSION}
    SOVERSION ${PROJECT_VERSION_MAJOR})
  target_link_libraries(mixrt_cuda_shared PRIVATE mixrt_static CUDA::cudart_static CUDA::cublasLt)
  target_link_options(mixrt_cuda_shared PRIVATE "LINKER:--exclude-libs,libmixrt.a")
  install(TARGETS mixrt_cuda_static mixrt_cuda_shared
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
else()
  message(STATUS "mixrt: CUDA backend OFF (stub: no device is visible)")
  add_library(mixrt_cuda_static STATIC "${MIXRT_CUDA_DIR}/cuda_stub.c")
  set_target_properties(mixrt_cuda_static PROPERTIES OUTPUT_NAME mixrt_cuda)
  target_include_directories(mixrt_cuda_static PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_compile_options(mixrt_cuda_static PRIVATE ${MIXRT_WARNINGS})
  target_link_libraries(mixrt_cuda_static PUBLIC mixrt_static)
endif()
