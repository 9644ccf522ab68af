# report: the bench HTML report (tools/report.c). test_report (the unit test from
# test_report.c) links tools/report.c here; report_render has it write its sample page,
# renders that in headless Chromium (one run: --dump-dom and --screenshot) and checks the
# rendered DOM and the PNG with report_check.py; report_bench_render does the same with a
# page from `mixrt bench --profile --report`, its expected counts from the run's --json.
# Chromium missing is a failure, never a skip (scripts/setup.sh installs Debian's chromium).
if(TARGET test_report)
  target_sources(test_report PRIVATE ${CMAKE_SOURCE_DIR}/tools/report.c)
  target_include_directories(test_report PRIVATE ${CMAKE_SOURCE_DIR}/tools)
  set(_report_check /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/report_check.py)
  add_test(NAME report_render
           COMMAND ${_report_check} --driver $<TARGET_FILE:test_report>
                   --workdir ${CMAKE_CURRENT_BINARY_DIR}/report_work)
  set_tests_properties(report_render PROPERTIES LABELS report TIMEOUT 120)

  # Only once bench.c calls the report (re-read whenever bench.c changes).
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tools/bench.c)
  file(READ ${CMAKE_SOURCE_DIR}/tools/bench.c _report_bench_src)
  string(FIND "${_report_bench_src}" "report_write_html" _report_bench_calls)
  if(NOT _report_bench_calls EQUAL -1)
    add_test(NAME report_bench_render
             COMMAND ${_report_check} --mixrt $<TARGET_FILE:mixrt>
                     --model /usr/share/libonnx-testdata/data/pytorch-converted/test_Conv2d/model.onnx
                     --workdir ${CMAKE_CURRENT_BINARY_DIR}/report_bench_work)
    set_tests_properties(report_bench_render PROPERTIES LABELS report TIMEOUT 180
                         ENVIRONMENT "MIXRT_TIMING_CACHE=off")
  endif()
  unset(_report_bench_src)
endif()
