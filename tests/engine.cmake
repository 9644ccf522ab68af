# Engine tests: models from scripts/make_engine_models.py and scripts/make_examples.py,
# generated into the build tree by a fixture.
add_test(NAME make_engine_models COMMAND sh -c
  "/usr/bin/python3 '${CMAKE_SOURCE_DIR}/scripts/make_engine_models.py' '${CMAKE_CURRENT_BINARY_DIR}/engine_models' && /usr/bin/python3 '${CMAKE_SOURCE_DIR}/scripts/make_examples.py' '${CMAKE_CURRENT_BINARY_DIR}/engine_examples' >/dev/null")
set_tests_properties(make_engine_models PROPERTIES FIXTURES_SETUP engine_models LABELS unit)
set_tests_properties(test_engine PROPERTIES FIXTURES_REQUIRED engine_models)
set_tests_properties(test_threads PROPERTIES FIXTURES_REQUIRED engine_models)
# The same checks with the binding switched off: nothing may be bound.
add_test(NAME test_threads_off COMMAND test_threads WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(test_threads_off PROPERTIES LABELS unit FIXTURES_REQUIRED engine_models ENVIRONMENT
  "MIXRT_AFFINITY=off;MIXRT_SOURCE_DIR=${CMAKE_SOURCE_DIR};MIXRT_BINARY_DIR=${CMAKE_BINARY_DIR}")
