# mixrt inspect: layers with inferred dtypes/shapes, and the operators this build cannot run.
set(_td /usr/share/libonnx-testdata/data)
add_test(NAME inspect_layers COMMAND $<TARGET_FILE:mixrt> inspect ${_td}/pytorch-converted/test_Conv2d/model.onnx)
set_tests_properties(inspect_layers PROPERTIES LABELS cli
  PASS_REGULAR_EXPRESSION "Conv +6 +f32\\[2,3,7,5\\], f32\\[4,3,3,2\\], f32\\[4\\] -> f32\\[2,4,5,4\\]  \\[cpu-ref f64\\]")
add_test(NAME inspect_unsupported COMMAND $<TARGET_FILE:mixrt> inspect ${_td}/simple/test_gradient_of_add/model.onnx)
set_tests_properties(inspect_unsupported PROPERTIES LABELS cli
  PASS_REGULAR_EXPRESSION "cannot run:\n  Gradient \\(domain 'ai.onnx.preview.training', opset 1\\): 1 node")
