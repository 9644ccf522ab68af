# The install tree (library, headers, pkg-config file, mixrt) works for a consumer.
add_test(NAME install_check COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/install_check.sh ${CMAKE_BINARY_DIR})
set_tests_properties(install_check PROPERTIES LABELS install)
