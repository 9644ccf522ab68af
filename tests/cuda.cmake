# cuda.cmake (tests) - the CUDA backend's tests link libmixrt_cuda (the stub without
# MIXRT_CUDA) and exit 77 where no GPU is visible, which ctest reports as skipped.
file(GLOB MIXRT_CUDA_TESTS CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/test_cuda_*.c")
foreach(src ${MIXRT_CUDA_TESTS})
  get_filename_component(name ${src} NAME_WE)
  if(TARGET ${name})
    # The engine test reaches the backend as users do, through dlopen of libmixrt_cuda.so
    # (built beside it); linking the static library too would put two CUDA runtimes in it.
    if(NOT name STREQUAL "test_cuda_engine")
      target_link_libraries(${name} PRIVATE mixrt_cuda_static)
    elseif(TARGET mixrt_cuda_shared)
      add_dependencies(${name} mixrt_cuda_shared)
      set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT "MIXRT_CUDA_LIBRARY=$<TARGET_FILE:mixrt_cuda_shared>")
    endif()
    set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77 LABELS "unit;cuda")
  endif()
endforeach()
