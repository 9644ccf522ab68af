# Python package tests (label "python"): python/mixrt over this build's libmixrt.so, with
# the example models of the make_engine_models fixture (tests/engine.cmake).
set(MIXRT_PY_ENV
  "MIXRT_LIBRARY=$<TARGET_FILE:mixrt_shared>"
  "MIXRT_CLI=$<TARGET_FILE:mixrt>"
  "MIXRT_EXAMPLES=${CMAKE_CURRENT_BINARY_DIR}/engine_examples"
  "MIXRT_TINY_MODEL=${CMAKE_CURRENT_BINARY_DIR}/engine_models/tiny_f32.onnx"
  "MIXRT_TIMING_CACHE=off"
  "PYTHONPATH=${CMAKE_SOURCE_DIR}/python"
  "PYTHONDONTWRITEBYTECODE=1")
add_test(NAME python_api COMMAND /usr/bin/python3 "${CMAKE_SOURCE_DIR}/tests/test_python.py")
set_tests_properties(python_api PROPERTIES LABELS python FIXTURES_REQUIRED engine_models
  ENVIRONMENT "${MIXRT_PY_ENV}")
# pip install ./python --target TMP; SKIP (77, visible in ctest's summary) without pip.
add_test(NAME python_pip_install
  COMMAND /usr/bin/python3 "${CMAKE_SOURCE_DIR}/tests/test_python.py" --pip-install)
set_tests_properties(python_pip_install PROPERTIES LABELS python SKIP_RETURN_CODE 77
  FIXTURES_REQUIRED engine_models ENVIRONMENT "${MIXRT_PY_ENV}")
# mixrt.torch.compile against PyTorch: SKIP (77) where torch is missing (this Debian
# machine); run on a machine with torch: test_python.py --torch.
add_test(NAME python_torch COMMAND /usr/bin/python3 "${CMAKE_SOURCE_DIR}/tests/test_python.py" --torch)
set_tests_properties(python_torch PROPERTIES LABELS python SKIP_RETURN_CODE 77
  ENVIRONMENT "${MIXRT_PY_ENV}")
