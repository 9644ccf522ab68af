# Graph passes: mixrt_passes_conformance runs every case of conformance_pass.txt with all
# passes applied to the model's graph; a listed case failing is a regression.
add_executable(mixrt_passes_conformance ${CMAKE_CURRENT_SOURCE_DIR}/passes_conformance.c)
target_compile_options(mixrt_passes_conformance PRIVATE ${MIXRT_WARNINGS})
target_link_libraries(mixrt_passes_conformance PRIVATE mixrt_internal)
set(MIXRT_ONNX_TESTDATA "/usr/share/libonnx-testdata/data" CACHE PATH "libonnx-testdata data folder")
if(EXISTS "${MIXRT_ONNX_TESTDATA}")
  add_test(NAME passes_conformance
    COMMAND mixrt_passes_conformance --data ${MIXRT_ONNX_TESTDATA}
            --list ${CMAKE_CURRENT_SOURCE_DIR}/conformance_pass.txt)
  set_tests_properties(passes_conformance PROPERTIES LABELS conformance TIMEOUT 1800)
endif()
# The same over the bf16/f16 conversions conformance.cmake generates, when it does.
foreach(variant bf16 f16)
  if(TEST conformance_convert_${variant})
    add_test(NAME passes_conformance_${variant}
      COMMAND mixrt_passes_conformance --data ${CMAKE_BINARY_DIR}/conformance_${variant}
              --list ${CMAKE_CURRENT_SOURCE_DIR}/conformance_pass_${variant}.txt)
    set_tests_properties(passes_conformance_${variant} PROPERTIES LABELS conformance TIMEOUT 1800
      FIXTURES_REQUIRED conformance_${variant}_data)
  endif()
endforeach()
