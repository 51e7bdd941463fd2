// The ONNX importer against ONNX Runtime's outputs: every fixture of tests/fixtures/onnx (made by
// tools/onnx_fixtures.py: NCHW models in torchvision's patterns), through the reference and
// compiled with Halide. Then malformed and hostile models, built here with the ONNX protobuf
// classes, each refused with a message that names the node, the operator and what is accepted.
#include <doctest/doctest.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

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
    onnx::ModelProto m = small_model();
    m.mutable_graph()->mutable_output(0)->set_name("nowhere");
    CHECK(load_error(save(m, "out.onnx"))
              .find("graph output 'nowhere' is not computed by any node") != std::string::npos);
  }
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
