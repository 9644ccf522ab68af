# mixrt_conformance: the ONNX backend test cases (Debian libonnx-testdata) through the
# public API. The ctest fails only on regressions against conformance_pass.txt.
add_executable(mixrt_conformance ${CMAKE_CURRENT_SOURCE_DIR}/conformance.c)
target_compile_options(mixrt_conformance PRIVATE ${MIXRT_WARNINGS})
target_link_libraries(mixrt_conformance PRIVATE mixrt_internal)
add_dependencies(mixrt_conformance mixrt_obj)

set(MIXRT_ONNX_TESTDATA "/usr/share/libonnx-testdata/data" CACHE PATH "libonnx-testdata data folder")
if(EXISTS "${MIXRT_ONNX_TESTDATA}")
  add_test(NAME conformance
    COMMAND mixrt_conformance --data ${MIXRT_ONNX_TESTDATA}
            --suite node,pytorch-converted,pytorch-operator,simple
            --expect ${CMAKE_CURRENT_SOURCE_DIR}/conformance_pass.txt)
  set_tests_properties(conformance PROPERTIES LABELS conformance TIMEOUT 3600)
else()
  message(STATUS "libonnx-testdata not found at ${MIXRT_ONNX_TESTDATA}: no conformance test")
endif()
