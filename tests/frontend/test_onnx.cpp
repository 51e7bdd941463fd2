// The ONNX importer against ONNX Runtime's outputs: every fixture of tests/fixtures/onnx (made by
// tools/onnx_fixtures.py: NCHW models in torchvision's patterns), through the reference and
// compiled with Halide. Then malformed and hostile models, built here with the ONNX protobuf
// classes, each refused with a message that names the node, the operator and what is accepted.
#include <doctest/doctest.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "codegen/compile.h"
#include "frontend/load.h"
#include "frontend/onnx/onnx.h"
#include "ir/error.h"
#include "passes/pipeline.h"
#include "runtime/executor.h"
#include "runtime/npy.h"
#include "runtime/reference/reference.h"
#include "tests/frontend/load_error.h"
#include "tests/util.h"

using namespace cnnc;
using test::load_error;
namespace fs = std::filesystem;

namespace {

fs::path fixtures() { return test::source_path("tests/fixtures/onnx"); }

std::string scratch(const std::string& file) { return test::scratch_path("onnx", file); }

// N x C x H x W to N x H x W x C.
ir::Tensor to_nhwc(const ir::Tensor& t) {
  const auto& s = t.shape;
  ir::Tensor r(ir::Shape{s[0], s[2], s[3], s[1]});
  for (int64_t n = 0; n < s[0]; ++n)
    for (int64_t c = 0; c < s[1]; ++c)
      for (int64_t h = 0; h < s[2]; ++h)
        for (int64_t w = 0; w < s[3]; ++w)
          r.data[((n * s[2] + h) * s[3] + w) * s[1] + c] =
              t.data[((n * s[1] + c) * s[2] + h) * s[3] + w];
  return r;
}

// A small valid model: input 1x3x8x8 -> Conv 3->4 3x3 -> Relu -> output; callers break it.
onnx::ModelProto small_model() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* opset = m.add_opset_import();
  opset->set_domain("");
  opset->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("small");
  auto* in = g->add_input();
  in->set_name("x");
  auto* tt = in->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  for (int64_t d : {1, 3, 8, 8}) tt->mutable_shape()->add_dim()->set_dim_value(d);
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : {4, 3, 3, 3}) w->add_dims(d);
  for (int i = 0; i < 4 * 3 * 3 * 3; ++i) w->add_float_data(0.01f * static_cast<float>(i % 7));
  auto* conv = g->add_node();
  conv->set_op_type("Conv");
  conv->set_name("conv1");
  conv->add_input("x");
  conv->add_input("w");
  conv->add_output("c");
  auto* relu = g->add_node();
  relu->set_op_type("Relu");
  relu->set_name("relu1");
  relu->add_input("c");
  relu->add_output("y");
  g->add_output()->set_name("y");
  return m;
}

std::string save(const onnx::ModelProto& m, const std::string& name) {
  const std::string p = scratch(name);
  std::ofstream f(p, std::ios::binary);
  m.SerializeToOstream(&f);
  return p;
}

}  // namespace

TEST_CASE("every ONNX fixture matches ONNX Runtime's outputs, through the reference and compiled") {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(fixtures()))
    if (e.path().extension() == ".onnx") names.insert(e.path().stem().string());
  REQUIRE(names.size() >= 7);
  for (const auto& name : names) {
    CAPTURE(name);
    const ir::Tensor x = runtime::read_npy((fixtures() / (name + ".input.npy")).string());
    const ir::Tensor want = runtime::read_npy((fixtures() / (name + ".output.npy")).string());
    ir::Graph g = frontend::load((fixtures() / (name + ".onnx")).string(), x.shape[0]);
    // NCHW inputs, except a tf2onnx export's, whose NHWC input the model transposes itself.
    CHECK(g.channels_first_io == (name != "tf2onnx_style"));
    const std::vector<ir::Tensor> inputs = {g.channels_first_io ? to_nhwc(x) : x};
    const auto ref = runtime::reference::run(g, inputs);
    passes::PipelineOptions popts;
    popts.tiling.target = codegen::describe_target(test::test_target());
    codegen::CompileOptions copts;
    copts.target = popts.tiling.target.name;
    runtime::CompiledModel model(codegen::compile(passes::optimize(g, popts), copts));
    const auto got = model.run(inputs);
    REQUIRE(got.size() == 1);
    // A 4-D output is NCHW in ONNX, NHWC here (the CLI transposes it back).
    const ir::Tensor expect = g.channels_first_io && want.shape.size() == 4 ? to_nhwc(want) : want;
    test::check_close(ref[0], expect, 1e-4);
    test::check_close(got[0], expect, 1e-4);
  }
}

TEST_CASE("an ONNX file names what is wrong: missing, not a model, truncated, opset, operators") {
  CHECK(load_error(scratch("absent.onnx")).find("no such file") != std::string::npos);
  {
    const std::string p = scratch("garbage.onnx");
    std::ofstream(p, std::ios::binary) << "this is not a protobuf \xff\xff\xff\xff";
    CHECK(load_error(p).find("not an ONNX model") != std::string::npos);
  }
  {
    // Every truncation of a valid model: a clear error or (a prefix that parses) a clear one
    // about what is missing, never a crash.
    std::string bytes;
    small_model().SerializeToString(&bytes);
    for (size_t cut = 0; cut < bytes.size(); cut += 7) {
      const std::string p = scratch("cut.onnx");
      std::ofstream(p, std::ios::binary) << bytes.substr(0, cut);
      CAPTURE(cut);
      CHECK(load_error(p).find("cut.onnx") != std::string::npos);
    }
  }
  CHECK(load_error(save(small_model(), "ok.onnx")) == "(no error)");
  {
    onnx::ModelProto m = small_model();
    m.mutable_opset_import(0)->set_version(5);
    CHECK(load_error(save(m, "opset.onnx"))
              .find("ONNX opset 5 is not supported; accepted: 7 to 21") != std::string::npos);
  }
  {
    onnx::ModelProto m = small_model();
    m.mutable_graph()->mutable_node(1)->set_op_type("NonMaxSuppression");
    const std::string e = load_error(save(m, "op.onnx"));
    CHECK(e.find("node 'relu1' (NonMaxSuppression): operator not supported; accepted: Add,") !=
          std::string::npos);
    CHECK(e.find("Conv") != std::string::npos);
  }
  {
    onnx::ModelProto m = small_model();
    m.mutable_graph()->mutable_node(0)->set_input(1, "not_a_constant");
    CHECK(load_error(save(m, "weights.onnx"))
              .find("node 'conv1' (Conv): the weights (input 1) must be a constant") !=
          std::string::npos);
  }
  {
    onnx::ModelProto m = small_model();
    m.mutable_graph()->mutable_initializer(0)->mutable_float_data()->RemoveLast();
    CHECK(load_error(save(m, "short.onnx"))
              .find("initializer 'w' holds 107 values, its shape needs 108") != std::string::npos);
  }
  {
    onnx::ModelProto m = small_model();
    m.mutable_graph()
        ->mutable_input(0)
        ->mutable_type()
        ->mutable_tensor_type()
        ->mutable_shape()
        ->mutable_dim(2)
        ->set_dim_param("h");
    CHECK(load_error(save(m, "dynamic.onnx")).find("dimension 2 is not a fixed size") !=
          std::string::npos);
  }
  {
    onnx::ModelProto m = small_model();
    auto* a = m.mutable_graph()->mutable_node(0)->add_attribute();
    a->set_name("pads");
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t v : {1, 1, 1}) a->add_ints(v);
    CHECK(load_error(save(m, "pads.onnx")).find("'pads' must hold 4 values") != std::string::npos);
  }
  {
    // A Resize that is not the IR's half-pixel sampling (cubic), a ConvTranspose whose group does
    // not divide its input channels or whose output_shape is beyond its full output are refused
    // with what would be accepted.
    onnx::ModelProto m = small_model();
    auto* node = m.mutable_graph()->mutable_node(1);
    node->set_op_type("Resize");
    node->add_input("");
    node->add_input("scales");
    auto* sc = m.mutable_graph()->add_initializer();
    sc->set_name("scales");
    sc->set_data_type(onnx::TensorProto::FLOAT);
    sc->add_dims(4);
    for (float v : {1.f, 1.f, 2.f, 2.f}) sc->add_float_data(v);
    auto* mode = node->add_attribute();
    mode->set_name("mode");
    mode->set_type(onnx::AttributeProto::STRING);
    mode->set_s("cubic");
    CHECK(load_error(save(m, "resize.onnx"))
              .find("(Resize): mode 'cubic' with coordinate_transformation_mode 'half_pixel'") !=
          std::string::npos);
    mode->set_s("nearest");
    CHECK(load_error(save(m, "resize.onnx")).find("accepted: nearest with asymmetric") !=
          std::string::npos);
    m.mutable_graph()->mutable_node(0)->set_op_type("ConvTranspose");
    auto* group = m.mutable_graph()->mutable_node(0)->add_attribute();
    group->set_name("group");
    group->set_type(onnx::AttributeProto::INT);
    group->set_i(2);
    CHECK(load_error(save(m, "convt.onnx")).find("(ConvTranspose): group 2 does not divide the input's 3 channels") !=
          std::string::npos);
    group->set_i(1);
    m.mutable_graph()->mutable_initializer(0)->set_dims(0, 3);  // (C_in 3, C_out 4, 3, 3)
    m.mutable_graph()->mutable_initializer(0)->set_dims(1, 4);
    auto* shape = m.mutable_graph()->mutable_node(0)->add_attribute();
    shape->set_name("output_shape");
    shape->set_type(onnx::AttributeProto::INTS);
    for (int64_t v : {11, 10}) shape->add_ints(v);
    CHECK(load_error(save(m, "convt.onnx")).find("output_shape asks for 11 rows; accepted: 1 to 10") !=
          std::string::npos);
  }
  {
    // ReduceMean over another axis than H and W; shape arithmetic (Gather, Unsqueeze) on a
    // computed tensor; a Gather index past the shape; a Cast of a tensor to an integer type.
    onnx::ModelProto m = small_model();
    auto* node = m.mutable_graph()->mutable_node(1);
    node->set_op_type("ReduceMean");
    auto* axes = node->add_attribute();
    axes->set_name("axes");
    axes->set_type(onnx::AttributeProto::INTS);
    axes->add_ints(1);
    CHECK(load_error(save(m, "reduce.onnx"))
              .find("node 'relu1' (ReduceMean): axes [1]; accepted: the spatial axes (2, 3)") !=
          std::string::npos);
    node->clear_attribute();
    node->set_op_type("Unsqueeze");
    CHECK(load_error(save(m, "unsqueeze.onnx"))
              .find("(Unsqueeze): input 0 is a computed tensor; accepted: constants") !=
          std::string::npos);
    node->set_op_type("Cast");
    auto* to = node->add_attribute();
    to->set_name("to");
    to->set_type(onnx::AttributeProto::INT);
    to->set_i(onnx::TensorProto::INT64);
    CHECK(load_error(save(m, "cast.onnx"))
              .find("(Cast): a computed tensor to type 7; accepted: float (a no-op)") !=
          std::string::npos);
    // Shape -> Gather(index 4) of a rank-4 tensor's 4 dims.
    node->clear_attribute();
    node->set_op_type("Shape");
    node->set_output(0, "s");
    auto* gather = m.mutable_graph()->add_node();
    gather->set_op_type("Gather");
    gather->set_name("gather1");
    gather->add_input("s");
    gather->add_input("i");
    gather->add_output("y");
    auto* i = m.mutable_graph()->add_initializer();
    i->set_name("i");
    i->set_data_type(onnx::TensorProto::INT64);
    i->add_int64_data(4);
    CHECK(load_error(save(m, "gather.onnx"))
              .find("node 'gather1' (Gather): index 4 outside [-4, 4)") != std::string::npos);
  }
  {
    onnx::ModelProto m = small_model();
    m.mutable_graph()->mutable_output(0)->set_name("nowhere");
    CHECK(load_error(save(m, "out.onnx"))
              .find("graph output 'nowhere' is not computed by any node") != std::string::npos);
  }
}

TEST_CASE("shape arithmetic folds at import: a Reshape target computed from Shape") {
  // small_model's conv output c (1 x 4 x 6 x 6) reshaped to (N, C*H*W) by a target computed
  // as an exporter with a dynamic batch writes it, through every folded operator: Shape,
  // Gather, Mul, Div (integer: truncates), Cast, Unsqueeze, Squeeze, Concat.
  onnx::ModelProto m = small_model();
  auto* g = m.mutable_graph();
  g->mutable_node()->RemoveLast();  // the Relu
  g->mutable_output(0)->set_name("y");
  auto node = [&](const char* op, std::vector<std::string> ins, const std::string& out) {
    auto* n = g->add_node();
    n->set_op_type(op);
    n->set_name(out);
    for (const auto& i : ins) n->add_input(i);
    n->add_output(out);
    return n;
  };
  auto ints = [&](const std::string& name, std::vector<int64_t> v, bool scalar = false) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    if (!scalar) t->add_dims(static_cast<int64_t>(v.size()));
    for (int64_t x : v) t->add_int64_data(x);
  };
  ints("i0", {0}, true);
  ints("i1", {1}, true);
  ints("i23", {2, 3});
  ints("two", {2}, true);
  ints("axis0", {0});
  node("Shape", {"c"}, "s");                   // [1, 4, 6, 6]
  node("Gather", {"s", "i0"}, "n");            // 1
  node("Gather", {"s", "i1"}, "ch");           // 4
  node("Gather", {"s", "i23"}, "hw");          // [6, 6]
  node("Mul", {"hw", "ch"}, "hw_ch");          // [24, 24]
  node("Unsqueeze", {"hw_ch", "axis0"}, "u");  // [[24, 24]]
  node("Squeeze", {"u", "axis0"}, "sq");       // [24, 24]
  node("Gather", {"sq", "i0"}, "a");           // 24
  node("Mul", {"a", "two"}, "a2");             // 48
  ints("seven", {7}, true);
  node("Div", {"a2", "seven"}, "q");  // 6 (48 / 7, truncated)
  node("Mul", {"q", "seven"}, "q7");  // 42
  ints("six", {6}, true);
  node("Add", {"q7", "six"}, "r");      // 48
  node("Mul", {"r", "two"}, "rr");      // 96
  node("Div", {"rr", "two"}, "r48");    // 48
  node("Mul", {"r48", "two"}, "r96");   // 96
  node("Add", {"r96", "r48"}, "r144");  // 144
  node("Cast", {"r144"}, "k")->add_attribute()->CopyFrom([] {
    onnx::AttributeProto a;
    a.set_name("to");
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(onnx::TensorProto::INT64);
    return a;
  }());
  node("Unsqueeze", {"n", "axis0"}, "n1");
  node("Unsqueeze", {"k", "axis0"}, "k1");
  node("Concat", {"n1", "k1"}, "target");
  node("Reshape", {"c", "target"}, "flat");
  auto* b = g->add_initializer();  // a Gemm after it, as a flattened map is not an output
  b->set_name("b");
  b->set_data_type(onnx::TensorProto::FLOAT);
  b->add_dims(144);
  b->add_dims(2);
  for (int i = 0; i < 288; ++i) b->add_float_data(0.01f * static_cast<float>(i % 5));
  node("Gemm", {"flat", "b"}, "y");
  const std::string p = save(m, "shape_arith.onnx");
  REQUIRE(load_error(p) == "(no error)");
  const ir::Graph graph = frontend::load(p, 1);
  CHECK(graph.node(graph.outputs()[0]).type.shape == ir::Shape{1, 2});
  CHECK(graph.node(graph.outputs()[0]).inputs.size() == 1);
  CHECK(graph.node(graph.node(graph.outputs()[0]).inputs[0]).type.shape == ir::Shape{1, 144});
  // A constant divided by zero and an empty constant are refused, naming the node.
  auto* div = &*std::find_if(g->mutable_node()->begin(), g->mutable_node()->end(),
                             [](const onnx::NodeProto& n) { return n.name() == "q"; });
  ints("zero", {0}, true);
  div->set_input(1, "zero");
  CHECK(load_error(save(m, "div0.onnx")).find("node 'q' (Div): divides a constant by 0") !=
        std::string::npos);
  ints("empty", {});
  div->set_input(1, "empty");
  CHECK(load_error(save(m, "empty.onnx")).find("node 'q' (Div): of an empty constant") !=
        std::string::npos);
}

TEST_CASE("external data: read from the model's folder, refused outside it or past its end") {
  onnx::ModelProto m = small_model();
  auto* w = m.mutable_graph()->mutable_initializer(0);
  std::string raw(4 * 108, '\0');
  for (int i = 0; i < 108; ++i) {
    const float v = w->float_data(i);
    std::memcpy(raw.data() + 4 * i, &v, 4);
  }
  w->clear_float_data();
  w->set_data_location(onnx::TensorProto::EXTERNAL);
  auto set = [&](const std::string& location, const std::string& length) {
    w->clear_external_data();
    auto* kv = w->add_external_data();
    kv->set_key("location");
    kv->set_value(location);
    kv = w->add_external_data();
    kv->set_key("length");
    kv->set_value(length);
  };
  std::ofstream(scratch("ext.bin"), std::ios::binary) << raw;
  set("ext.bin", "432");
  CHECK(load_error(save(m, "ext.onnx")) == "(no error)");
  // The same model named through a path with ".." in it.
  fs::create_directories(scratch("sub"));
  CHECK(load_error(scratch("sub/../ext.onnx")) == "(no error)");
  set("../ext.bin", "432");
  CHECK(load_error(save(m, "ext_up.onnx")).find("must name a file in the model's folder") !=
        std::string::npos);
  set("/etc/passwd", "432");
  CHECK(load_error(save(m, "ext_abs.onnx")).find("must name a file in the model's folder") !=
        std::string::npos);
  set("ext.bin", "4000");
  CHECK(load_error(save(m, "ext_long.onnx")).find("lie outside") != std::string::npos);
}
