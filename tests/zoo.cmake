# Model zoo (issue 3 item 4): ResNet-50, MobileNetV2, BERT-base, ViT-B/16, GPT-2 small and
# a small LSTM, generated into the build dir by scripts/zoo/make_zoo.py (seeded; never
# committed), f32 checked against ONNX Runtime (npm onnxruntime-node, installed into
# build/ort by the fixture test), f16/bf16 against the f32 twin run by mixrt. One test per
# model (label "zoo"); skip them all with `ctest -LE zoo`.
set(MIXRT_ZOO_MODELS resnet50 mobilenetv2 bert vit gpt2 lstm)
set(_zoo_check /usr/bin/python3 ${CMAKE_SOURCE_DIR}/scripts/zoo_check.py --mixrt $<TARGET_FILE:mixrt>
    --work ${CMAKE_BINARY_DIR}/zoo --ort-dir ${CMAKE_BINARY_DIR}/ort)
add_test(NAME zoo_ort_install COMMAND ${_zoo_check} --install-only)
set_tests_properties(zoo_ort_install PROPERTIES LABELS zoo FIXTURES_SETUP zoo_ort TIMEOUT 600)
foreach(m ${MIXRT_ZOO_MODELS})
  add_test(NAME zoo_${m} COMMAND ${_zoo_check} --models ${m} --verbose)
  # Each test holds up to ~4 GB (five model files, weights widened to double by the
  # reference kernels); RUN_SERIAL keeps two big ones from sharing a 2-core CI box.
  set_tests_properties(zoo_${m} PROPERTIES LABELS zoo FIXTURES_REQUIRED zoo_ort TIMEOUT 1800 RUN_SERIAL ON)
endforeach()
