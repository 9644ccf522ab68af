# bench: `mixrt bench` from outside (issue 5) - JSON fields and run counts, the ONNX
# Runtime peer row, --profile, progress lines, --report and usage errors - on the example
# models of the cli_examples fixture (tests/cli.cmake), one test per group of
# tests/bench_cli.sh (label "cli"). Never asserts on a time.
if(EXISTS /usr/bin/python3)
  set(_bench_sh bash ${CMAKE_CURRENT_SOURCE_DIR}/bench_cli.sh $<TARGET_FILE:mixrt> ${CMAKE_CURRENT_BINARY_DIR}/cli_work)
  foreach(group json profile progress report usage)
    add_test(NAME bench_${group} COMMAND ${_bench_sh} ${group})
    set_tests_properties(bench_${group} PROPERTIES LABELS cli FIXTURES_REQUIRED cli_examples TIMEOUT 600)
  endforeach()
  # The peer reuses the zoo tests' onnxruntime-node (build/ort, fixture zoo_ort) rather
  # than downloading it again into ~/.cache. Without node the fixture could not install
  # it, so the test then runs alone and reports itself skipped (exit 77).
  find_program(MIXRT_NODE_EXE node)
  add_test(NAME bench_peer_ort COMMAND ${_bench_sh} peer)
  if(MIXRT_NODE_EXE)
    set_tests_properties(bench_peer_ort PROPERTIES FIXTURES_REQUIRED "cli_examples;zoo_ort"
      ENVIRONMENT "MIXRT_ORT_DIR=${CMAKE_BINARY_DIR}/ort")
  else()
    set_tests_properties(bench_peer_ort PROPERTIES FIXTURES_REQUIRED cli_examples)
  endif()
  set_tests_properties(bench_peer_ort PROPERTIES LABELS cli SKIP_RETURN_CODE 77 TIMEOUT 900)
endif()
