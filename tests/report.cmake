# report: the bench HTML report (tools/report.c). test_report (the unit test from
# test_report.c) links tools/report.c here; report_render has it write its sample page,
# renders that in headless Chromium (--dump-dom and --screenshot) and checks the rendered
# DOM and the PNG with report_check.py. Chromium missing is a failure, never a skip
# (scripts/setup.sh installs Debian's chromium package).
if(TARGET test_report)
  target_sources(test_report PRIVATE ${CMAKE_SOURCE_DIR}/tools/report.c)
  target_include_directories(test_report PRIVATE ${CMAKE_SOURCE_DIR}/tools)
  add_test(NAME report_render
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/report_check.py
                   --driver $<TARGET_FILE:test_report> --workdir ${CMAKE_CURRENT_BINARY_DIR}/report_work)
  set_tests_properties(report_render PROPERTIES LABELS report TIMEOUT 120)
endif()
