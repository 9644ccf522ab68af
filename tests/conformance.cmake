# mixrt_conformance: the ONNX backend test cases (Debian libonnx-testdata) through the
# public API, three ways: as shipped (f32), and converted to bf16 and f16 by
# scripts/convert_dtype.py. Each ctest fails only on regressions against its pass list;
# conformance_report (run after them) writes conformance_report.md in the build folder.
add_executable(mixrt_conformance ${CMAKE_CURRENT_SOURCE_DIR}/conformance.c)
target_compile_options(mixrt_conformance PRIVATE ${MIXRT_WARNINGS})
target_link_libraries(mixrt_conformance PRIVATE mixrt_internal)
add_dependencies(mixrt_conformance mixrt_obj)

set(MIXRT_ONNX_TESTDATA "/usr/share/libonnx-testdata/data" CACHE PATH "libonnx-testdata data folder")
set(MIXRT_PYTHON_ONNX "/usr/bin/python3" CACHE FILEPATH "Python with onnx and numpy (scripts/convert_dtype.py)")
set(_conf_suites node,pytorch-converted,pytorch-operator,simple)
set(_conf_out ${CMAKE_BINARY_DIR})
if(EXISTS "${MIXRT_ONNX_TESTDATA}")
  add_test(NAME conformance
    COMMAND mixrt_conformance --data ${MIXRT_ONNX_TESTDATA}
            --suite ${_conf_suites}
            --expect ${CMAKE_CURRENT_SOURCE_DIR}/conformance_pass.txt
            --report ${_conf_out}/conformance_f32.csv)
  set_tests_properties(conformance PROPERTIES LABELS conformance TIMEOUT 3600
    FIXTURES_REQUIRED conformance_results)
  # The same cases through engines (passes, precision planner, optimized kernels): every
  # case the reference executor passes must pass.
  add_test(NAME conformance_engine
    COMMAND mixrt_conformance --data ${MIXRT_ONNX_TESTDATA} --suite ${_conf_suites} --engine fp32
            --expect ${CMAKE_CURRENT_SOURCE_DIR}/conformance_pass.txt)
  set_tests_properties(conformance_engine PROPERTIES LABELS conformance TIMEOUT 3600)

  execute_process(COMMAND ${MIXRT_PYTHON_ONNX} -c "import onnx, numpy"
    RESULT_VARIABLE _conf_py_rc OUTPUT_QUIET ERROR_QUIET)
  if(_conf_py_rc EQUAL 0)
    foreach(variant bf16 f16)
      # The converted suites are generated into the build folder (a fixture), then run.
      add_test(NAME conformance_convert_${variant}
        COMMAND ${MIXRT_PYTHON_ONNX} ${CMAKE_SOURCE_DIR}/scripts/convert_dtype.py --to ${variant}
                --suites --suite ${_conf_suites} --quiet
                ${MIXRT_ONNX_TESTDATA} ${_conf_out}/conformance_${variant})
      set_tests_properties(conformance_convert_${variant} PROPERTIES LABELS conformance TIMEOUT 600
        FIXTURES_SETUP conformance_${variant}_data)
      add_test(NAME conformance_${variant}
        COMMAND mixrt_conformance --variant ${variant} --data ${_conf_out}/conformance_${variant}
                --suite ${_conf_suites}
                --expect ${CMAKE_CURRENT_SOURCE_DIR}/conformance_pass_${variant}.txt
                --report ${_conf_out}/conformance_${variant}.csv)
      set_tests_properties(conformance_${variant} PROPERTIES LABELS conformance TIMEOUT 1200
        FIXTURES_REQUIRED "conformance_${variant}_data;conformance_results")
      # Engines on the converted cases: weak typing with the 16-bit precision enabled (the
      # planner lowers layers), and strong typing (every tensor computed in its dtype).
      string(REPLACE "f16" "fp16" _vprec "${variant}")
      string(REPLACE "bfp16" "bf16" _vprec "${_vprec}")
      foreach(engine "fp32,${_vprec}" "fp32:strong")
        if(engine STREQUAL "fp32:strong")
          set(_ename strong)
        else()
          set(_ename weak)
        endif()
        add_test(NAME conformance_engine_${variant}_${_ename}
          COMMAND mixrt_conformance --variant ${variant} --data ${_conf_out}/conformance_${variant}
                  --suite ${_conf_suites} --engine ${engine}
                  --expect ${CMAKE_CURRENT_SOURCE_DIR}/conformance_pass_${variant}.txt)
        set_tests_properties(conformance_engine_${variant}_${_ename} PROPERTIES LABELS conformance TIMEOUT 1200
          FIXTURES_REQUIRED conformance_${variant}_data)
      endforeach()
    endforeach()
  else()
    message(STATUS "${MIXRT_PYTHON_ONNX} lacks onnx/numpy: no bf16/f16 conformance tests")
  endif()
  # The report runs after every conformance test that ran (a fixture cleanup step) and
  # reads the CSV files they wrote.
  add_test(NAME conformance_report
    COMMAND ${MIXRT_PYTHON_ONNX} ${CMAKE_SOURCE_DIR}/scripts/conformance_report.py
            --out ${_conf_out}/conformance_report.md
            ${_conf_out}/conformance_f32.csv ${_conf_out}/conformance_bf16.csv ${_conf_out}/conformance_f16.csv)
  set_tests_properties(conformance_report PROPERTIES LABELS conformance TIMEOUT 300
    FIXTURES_CLEANUP conformance_results)
else()
  message(STATUS "libonnx-testdata not found at ${MIXRT_ONNX_TESTDATA}: no conformance test")
endif()
