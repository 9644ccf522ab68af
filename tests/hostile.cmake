# hostile: `mixrt run` on missing, non-ONNX, truncated, byte-flipped and malicious models
# and inputs (generated at test time by scripts/make_hostile_models.py); every one must
# end in one error line and an exit status below 128. Needs /usr/bin/python3 with onnx.
if(EXISTS /usr/bin/python3)
  add_test(NAME hostile COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/hostile.sh $<TARGET_FILE:mixrt>)
  set_tests_properties(hostile PROPERTIES LABELS hostile TIMEOUT 900)
else()
  message(STATUS "/usr/bin/python3 not found: no hostile test")
endif()
