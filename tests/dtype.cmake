# Dtype conversion tests beyond the auto-registered test_dtype:
# - test_dtype_numpy: f32 -> f16 against NumPy's float16 (file written first by
#   scripts/f16_numpy_reference.py; the test fails, not skips, if the file is missing);
# - test_dtype_avx512: AVX-512 kernels bit-identical to the scalar ones; reported as
#   skipped (exit 77) on CPUs without AVX-512.
set(MIXRT_PYTHON_NUMPY "/usr/bin/python3" CACHE FILEPATH "Python with numpy for reference data")
set(_f16ref "${CMAKE_CURRENT_BINARY_DIR}/f16_numpy_ref.bin")
add_test(NAME test_dtype_numpy
  COMMAND sh -c "\"$1\" \"$2\" \"$3\" && MIXRT_F16_NUMPY_REF=\"$3\" \"$4\" --numpy \"$3\"" sh
          ${MIXRT_PYTHON_NUMPY} ${CMAKE_SOURCE_DIR}/scripts/f16_numpy_reference.py ${_f16ref}
          $<TARGET_FILE:test_dtype>
  WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(test_dtype_numpy PROPERTIES LABELS unit TIMEOUT 300)

add_test(NAME test_dtype_avx512 COMMAND test_dtype --avx512 WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(test_dtype_avx512 PROPERTIES LABELS unit SKIP_RETURN_CODE 77)
