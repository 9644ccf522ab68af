# rounds: the order of `mixrt bench`'s rows in each round (tools/rounds.c), linked into the
# unit test test_rounds here (the tools are not in the library).
if(TARGET test_rounds)
  target_sources(test_rounds PRIVATE ${CMAKE_SOURCE_DIR}/tools/rounds.c)
  target_include_directories(test_rounds PRIVATE ${CMAKE_SOURCE_DIR}/tools)
endif()
