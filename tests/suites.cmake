# `mixrt run` through the command line over the pytorch-converted and simple suites,
# compared by an independent NumPy script; at least 95% of the cases must pass.
add_test(NAME suites_cli COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/scripts/check_suites.py
         --mixrt $<TARGET_FILE:mixrt> --suites pytorch-converted,simple --min-rate 0.95 --verbose)
set_tests_properties(suites_cli PROPERTIES LABELS cli)
