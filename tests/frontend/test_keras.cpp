// The Keras importer against Keras' own outputs: every fixture of tests/fixtures/keras (made by
// tools/keras_export.py fixtures) in all three formats, compiled with Halide and run, and also
// run by the reference implementation. Then malformed and hostile files.
#include <doctest/doctest.h>

#include <csignal>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <unistd.h>

#include "frontend/keras/isolated.h"
#include "frontend/load.h"
#include "ir/error.h"
#include "ir/shape_inference.h"
#include "passes/pipeline.h"
#include "codegen/compile.h"
#include "runtime/executor.h"
#include "runtime/npy.h"
#include "runtime/reference/reference.h"
#include "tests/frontend/load_error.h"
#include "tests/util.h"

using namespace cnnc;
using test::load_error;
namespace fs = std::filesystem;

namespace {

fs::path fixtures() { return test::source_path("tests/fixtures/keras"); }

std::vector<std::string> fixture_names() {
  std::set<std::string> names;
  if (fs::exists(fixtures()))
    for (const auto& e : fs::directory_iterator(fixtures()))
      if (e.path().extension() == ".keras" && e.path().stem().string().rfind("extra_", 0) != 0)
        names.insert(e.path().stem().string());
  return {names.begin(), names.end()};
}

std::vector<ir::Tensor> expected_outputs(const std::string& name) {
  std::vector<ir::Tensor> outs;
  if (fs::exists(fixtures() / (name + ".output.npy"))) {
    outs.push_back(runtime::read_npy((fixtures() / (name + ".output.npy")).string()));
  } else {
    for (int i = 0; fs::exists(fixtures() / (name + ".output" + std::to_string(i) + ".npy")); ++i)
      outs.push_back(runtime::read_npy((fixtures() / (name + ".output" + std::to_string(i) + ".npy")).string()));
  }
  return outs;
}

std::vector<ir::Tensor> inputs_of(const std::string& name) {
  std::vector<ir::Tensor> ins;
  if (fs::exists(fixtures() / (name + ".input.npy"))) {
    ins.push_back(runtime::read_npy((fixtures() / (name + ".input.npy")).string()));
  } else {
    for (int i = 0; fs::exists(fixtures() / (name + ".input" + std::to_string(i) + ".npy")); ++i)
      ins.push_back(runtime::read_npy((fixtures() / (name + ".input" + std::to_string(i) + ".npy")).string()));
  }
  return ins;
}

std::string scratch(const std::string& file) { return test::scratch_path("keras", file); }

void write(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f << bytes;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("every Keras fixture, in .keras, .h5 and .json form, matches Keras' outputs") {
  const auto names = fixture_names();
  REQUIRE(names.size() >= 10);
  for (const auto& name : names) {
    const auto inputs = inputs_of(name);
    const auto want = expected_outputs(name);
    REQUIRE(!inputs.empty());
    REQUIRE(!want.empty());
    for (const char* ext : {".keras", ".h5", ".json"}) {
      const fs::path file = fixtures() / (name + ext);
      if (!fs::exists(file)) continue;
      CAPTURE(file.string());
      ir::Graph g = frontend::load(file.string(), inputs[0].shape[0]);
      // Reference first (the importer's semantics), then Halide after the passes.
      const auto ref = runtime::reference::run(g, inputs);
      passes::PipelineOptions popts;
      popts.tiling.target = codegen::describe_target(test::test_target());
      codegen::CompileOptions copts;
      copts.target = popts.tiling.target.name;
      runtime::CompiledModel model(codegen::compile(passes::optimize(g, popts), copts));
      const auto got = model.run(inputs);
      REQUIRE(got.size() == want.size());
      for (size_t i = 0; i < want.size(); ++i) {
        CAPTURE(i);
        test::check_close(ref[i], want[i], 1e-4);
        test::check_close(got[i], want[i], 1e-4);
      }
    }
  }
}

TEST_CASE("a Keras file names what is wrong: missing, truncated, not a model, unknown and Lambda layers") {
  const auto names = fixture_names();
  REQUIRE(!names.empty());
  const fs::path keras_file = fixtures() / (names[0] + ".keras");
  const std::string bytes = slurp(keras_file);

  CHECK(load_error(scratch("absent.keras")).find("no such file") != std::string::npos);
  for (size_t cut : {size_t{0}, size_t{10}, bytes.size() / 3, bytes.size() / 2, bytes.size() - 30}) {
    CAPTURE(cut);
    const std::string p = scratch("cut.keras");
    write(p, bytes.substr(0, cut));
    CHECK(load_error(p).find(p + ":") == 0);
  }
  const std::string not_zip = scratch("text.keras");
  write(not_zip, "this is not a zip archive");
  CHECK(load_error(not_zip).find("not a readable .keras archive") != std::string::npos);
  const std::string not_h5 = scratch("text.h5");
  write(not_h5, "this is not HDF5");
  CHECK(load_error(not_h5).find("not an HDF5 file") != std::string::npos);
  const std::string bad_json = scratch("bad.json");
  write(bad_json, "{\"class_name\": \"Functional\", \"config\": {\"layers\": [");
  CHECK(load_error(bad_json).find("not valid JSON") != std::string::npos);
}

TEST_CASE("unsupported layers, Lambda, hostile shapes and inconsistent configs are refused by name") {
  const auto names = fixture_names();
  REQUIRE(!names.empty());
  // A small functional config written by hand, in Keras 3's form.
  auto model = [](const std::string& layer_class, const std::string& layer_config, const std::string& shape) {
    return R"({"class_name": "Functional", "config": {"name": "m", "layers": [
      {"class_name": "InputLayer", "name": "x", "config": {"name": "x", "batch_shape": )" + shape + R"(}, "inbound_nodes": []},
      {"class_name": ")" + layer_class + R"(", "name": "y", "config": )" + layer_config + R"(,
       "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"shape": [null, 4, 4, 3], "keras_history": ["x", 0, 0]}}], "kwargs": {}}]}],
      "input_layers": [["x", 0, 0]], "output_layers": [["y", 0, 0]]}})";
  };
  const std::string p = scratch("m.json");
  write(p, model("Conv3D", "{\"name\": \"y\"}", "[null, 4, 4, 3]"));
  std::string e = load_error(p);
  CHECK(e.find("layer 'y' (Conv3D): layer class 'Conv3D' is not supported; accepted: ") != std::string::npos);
  CHECK(e.find("SeparableConv2D") != std::string::npos);
  write(p, model("Lambda", "{\"name\": \"y\", \"function\": \"import os; os.system('false')\"}", "[null, 4, 4, 3]"));
  CHECK(load_error(p).find("Lambda layers hold Python code, which cnnc never runs") != std::string::npos);
  write(p, model("ReLU", "{\"name\": \"y\"}", "[null, 100000, 100000, 3]"));
  CHECK(load_error(p).find("more than 2^31 - 1 elements") != std::string::npos);
  write(p, model("ReLU", "{\"name\": \"y\"}", "[null, null, null, 3]"));
  CHECK(load_error(p).find("cnnc compiles fixed shapes") != std::string::npos);
  write(p, model("Conv2D", "{\"name\": \"y\", \"filters\": 2, \"kernel_size\": [9, 9]}", "[null, 4, 4, 3]"));
  CHECK(load_error(p).find("layer 'y'") != std::string::npos);
  write(p, model("Conv2D", "{\"name\": \"y\", \"filters\": 2, \"kernel_size\": [3, 3], \"data_format\": \"channels_first\"}",
                 "[null, 4, 4, 3]"));
  CHECK(load_error(p).find("data_format 'channels_first' is not supported") != std::string::npos);
  write(p, model("Dense", "{\"name\": \"y\", \"units\": \"many\"}", "[null, 4, 4, 3]"));
  CHECK(load_error(p).find("'units' must be an integer") != std::string::npos);
  // A reference to a layer that does not exist.
  std::string text = model("ReLU", "{\"name\": \"y\"}", "[null, 4, 4, 3]");
  text.replace(text.find("[\"x\", 0, 0]}}"), 11, "[\"q\", 0, 0]");
  write(p, text);
  CHECK(load_error(p).find("reads 'q', which is not a layer of the model") != std::string::npos);
}

TEST_CASE("weights that disagree with the architecture are refused, naming the layer and both shapes") {
  // A JSON architecture with another model's weights file beside it.
  const auto names = fixture_names();
  std::string json_name, other;
  for (const auto& n : names)
    if (fs::exists(fixtures() / (n + ".json")) && fs::exists(fixtures() / (n + ".weights.h5"))) {
      if (json_name.empty()) json_name = n;
      else if (other.empty()) other = n;
    }
  REQUIRE(!other.empty());
  const std::string arch = scratch("mixed.json");
  write(arch, slurp(fixtures() / (json_name + ".json")));
  write(scratch("mixed.weights.h5"), slurp(fixtures() / (other + ".weights.h5")));
  const std::string e = load_error(arch);
  CHECK(e.find("mixed") != std::string::npos);
  CHECK(e != "(no error)");
}

TEST_CASE("a shared layer (one layer called twice) is refused with a message that says so") {
  const std::string e = load_error((fixtures() / "extra_shared_nested.keras").string());
  CHECK(e.find("is called 2 times (a shared layer)") != std::string::npos);
}

TEST_CASE("HDF5 is read in a child process: its results come back; its crash, hang or error is a clear error") {
  using frontend::keras::Hdf5Contents;
  using frontend::keras::read_isolated;
  Hdf5Contents c;
  c.config = std::string("{\"config\": 1}\0binary", 20);
  c.weights["conv"] = {ir::Tensor({3, 3, 2, 4}), ir::Tensor({4})};
  c.weights["conv"][0].data[7] = -2.5f;
  c.weights["empty"] = {};
  const Hdf5Contents back = read_isolated("f.h5", [&] { return c; });
  CHECK(back.config == c.config);
  REQUIRE(back.weights.size() == 2);
  CHECK(back.weights.at("conv")[0].shape == ir::Shape{3, 3, 2, 4});
  CHECK(back.weights.at("conv")[0].data == c.weights["conv"][0].data);
  CHECK(back.weights.at("conv")[1].shape == ir::Shape{4});
  CHECK(back.weights.at("empty").empty());
  CHECK_THROWS_WITH_AS(read_isolated("bad.h5", []() -> Hdf5Contents { throw Error("bad.h5: no 'layers' group"); }),
                       "bad.h5: no 'layers' group", Error);
  CHECK_THROWS_WITH_AS(read_isolated("crash.h5", []() -> Hdf5Contents {
                         std::raise(SIGSEGV);
                         return {};
                       }),
                       doctest::Contains("crash.h5: the HDF5 library crashed reading it (signal 11"), Error);
  CHECK_THROWS_WITH_AS(read_isolated("hang.h5", []() -> Hdf5Contents {
                         for (;;) pause();
                       }, 0.5),
                       doctest::Contains("hang.h5: the HDF5 library did not finish reading it"), Error);
}
