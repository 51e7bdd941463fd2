// The Keras importer against Keras' own outputs: every fixture of tests/fixtures/keras (made by
// tools/keras_export.py fixtures) in all three formats, compiled with Halide and run, and also
// run by the reference implementation. Then malformed and hostile files.
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "codegen/compile.h"
#include "frontend/keras/isolated.h"
#include "frontend/keras/keras.h"
#include "frontend/load.h"
#include "ir/error.h"
#include "ir/shape_inference.h"
#include "passes/gradient.h"
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

fs::path fixtures() { return test::source_path("tests/fixtures/keras"); }

std::vector<std::string> fixture_names() {
  std::set<std::string> names;
  if (fs::exists(fixtures()))
    for (const auto& e : fs::directory_iterator(fixtures()))
      if (e.path().extension() == ".keras") names.insert(e.path().stem().string());
  return {names.begin(), names.end()};
}

std::vector<ir::Tensor> expected_outputs(const std::string& name) {
  std::vector<ir::Tensor> outs;
  if (fs::exists(fixtures() / (name + ".output.npy"))) {
    outs.push_back(runtime::read_npy((fixtures() / (name + ".output.npy")).string()));
  } else {
    for (int i = 0; fs::exists(fixtures() / (name + ".output" + std::to_string(i) + ".npy")); ++i)
      outs.push_back(runtime::read_npy(
          (fixtures() / (name + ".output" + std::to_string(i) + ".npy")).string()));
  }
  return outs;
}

std::vector<ir::Tensor> inputs_of(const std::string& name) {
  std::vector<ir::Tensor> ins;
  if (fs::exists(fixtures() / (name + ".input.npy"))) {
    ins.push_back(runtime::read_npy((fixtures() / (name + ".input.npy")).string()));
  } else {
    for (int i = 0; fs::exists(fixtures() / (name + ".input" + std::to_string(i) + ".npy")); ++i)
      ins.push_back(runtime::read_npy(
          (fixtures() / (name + ".input" + std::to_string(i) + ".npy")).string()));
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

TEST_CASE(
    "a Keras file names what is wrong: missing, truncated, not a model, unknown and Lambda "
    "layers") {
  const auto names = fixture_names();
  REQUIRE(!names.empty());
  const fs::path keras_file = fixtures() / (names[0] + ".keras");
  const std::string bytes = slurp(keras_file);

  CHECK(load_error(scratch("absent.keras")).find("no such file") != std::string::npos);
  for (size_t cut :
       {size_t{0}, size_t{10}, bytes.size() / 3, bytes.size() / 2, bytes.size() - 30}) {
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

TEST_CASE(
    "unsupported layers, Lambda, hostile shapes and inconsistent configs are refused by name") {
  const auto names = fixture_names();
  REQUIRE(!names.empty());
  // A small functional config written by hand, in Keras 3's form.
  auto model = [](const std::string& layer_class, const std::string& layer_config,
                  const std::string& shape) {
    return R"({"class_name": "Functional", "config": {"name": "m", "layers": [
      {"class_name": "InputLayer", "name": "x", "config": {"name": "x", "batch_shape": )" +
           shape + R"(}, "inbound_nodes": []},
      {"class_name": ")" +
           layer_class + R"(", "name": "y", "config": )" + layer_config + R"(,
       "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"shape": [null, 4, 4, 3], "keras_history": ["x", 0, 0]}}], "kwargs": {}}]}],
      "input_layers": [["x", 0, 0]], "output_layers": [["y", 0, 0]]}})";
  };
  const std::string p = scratch("m.json");
  write(p, model("Conv3D", "{\"name\": \"y\"}", "[null, 4, 4, 3]"));
  std::string e = load_error(p);
  CHECK(e.find("layer 'y' (Conv3D): layer class 'Conv3D' is not supported; accepted: ") !=
        std::string::npos);
  CHECK(e.find("SeparableConv2D") != std::string::npos);
  write(p, model("Lambda", "{\"name\": \"y\", \"function\": \"import os; os.system('false')\"}",
                 "[null, 4, 4, 3]"));
  CHECK(load_error(p).find("Lambda layers hold Python code, which cnnc never runs") !=
        std::string::npos);
  write(p, model("ReLU", "{\"name\": \"y\"}", "[null, 100000, 100000, 3]"));
  CHECK(load_error(p).find("more than 2^31 - 1 elements") != std::string::npos);
  write(p, model("ReLU", "{\"name\": \"y\"}", "[null, null, null, 3]"));
  CHECK(load_error(p).find("cnnc compiles fixed shapes") != std::string::npos);
  write(p, model("Conv2D", "{\"name\": \"y\", \"filters\": 2, \"kernel_size\": [9, 9]}",
                 "[null, 4, 4, 3]"));
  CHECK(load_error(p).find("layer 'y'") != std::string::npos);
  write(p, model("Conv2D",
                 "{\"name\": \"y\", \"filters\": 2, \"kernel_size\": [3, 3], \"data_format\": "
                 "\"channels_first\"}",
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

TEST_CASE(
    "weights that disagree with the architecture are refused, naming the layer and both shapes") {
  // A JSON architecture with another model's weights file beside it.
  const auto names = fixture_names();
  std::string json_name, other;
  for (const auto& n : names)
    if (fs::exists(fixtures() / (n + ".json")) && fs::exists(fixtures() / (n + ".weights.h5"))) {
      if (json_name.empty())
        json_name = n;
      else if (other.empty())
        other = n;
    }
  REQUIRE(!other.empty());
  const std::string arch = scratch("mixed.json");
  write(arch, slurp(fixtures() / (json_name + ".json")));
  write(scratch("mixed.weights.h5"), slurp(fixtures() / (other + ".weights.h5")));
  const std::string e = load_error(arch);
  CHECK(e.find("mixed") != std::string::npos);
  CHECK(e != "(no error)");
}

TEST_CASE("a shared layer or model is one layer per call, all reading one set of weights") {
  for (const std::string ext : {".keras", ".h5", ".json"}) {
    CAPTURE(ext);
    const ir::Graph g = frontend::load((fixtures() / ("shared_tower" + ext)).string(), 1);
    // The tower (t_conv, t_bn) called three times, the head twice.
    for (const char* name : {"t_conv", "t_conv/call1", "t_conv/call2", "t_bn/call2", "head/call1"})
      CHECK(g.find(name) >= 0);
    CHECK(g.shared_weights.at("t_conv/call2") == "t_conv");
    CHECK(g.shared_weights.at("head/call1") == "head");
    CHECK(g.node(g.find("t_conv/call1")).param("kernel")->value.data ==
          g.node(g.find("t_conv")).param("kernel")->value.data);
    CHECK(ir::total_params(g) == 419);  // Keras' count: the copies' weights once
  }
  // Training: one trainable per shared weight (the copies' gradients summed into it).
  const ir::Graph g = frontend::load((fixtures() / "shared_tower.keras").string(), 2);
  const auto t = passes::build_training_graph(g, passes::Loss::MeanSquaredError);
  int conv_kernels = 0;
  for (const auto& tr : t.trainables) conv_kernels += tr.layer == "t_conv" && tr.role == "kernel";
  CHECK(conv_kernels == 1);
  for (const auto& tr : t.trainables) CHECK(tr.layer.find("/call") == std::string::npos);
  // A reference to a call the layer does not have.
  std::string config = slurp(fixtures() / "shared_nested.json");
  const size_t at = config.find("\"keras_history\": [\"shared_conv\", 1, 0]");
  REQUIRE(at != std::string::npos);
  config.replace(at, std::string("\"keras_history\": [\"shared_conv\", 1, 0]").size(),
                 "\"keras_history\": [\"shared_conv\", 7, 0]");
  write(scratch("bad_call.json"), config);
  // A model of 400 layers called 300 times: refused before it is copied 300 times.
  auto tensor = [](const std::string& layer) {
    return "{\"class_name\": \"__keras_tensor__\", \"config\": {\"keras_history\": [\"" + layer +
           "\", 0, 0]}}";
  };
  std::string inner =
      "{\"class_name\": \"InputLayer\", \"name\": \"i\", \"config\": "
      "{\"batch_shape\": [null, 4]}, \"inbound_nodes\": []}";
  for (int k = 0; k < 400; ++k)
    inner += ", {\"class_name\": \"Activation\", \"name\": \"a" + std::to_string(k) +
             "\", \"config\": {\"activation\": \"relu\"}, \"inbound_nodes\": [{\"args\": [" +
             tensor(k ? "a" + std::to_string(k - 1) : "i") + "]}]}";
  std::string calls;
  for (int k = 0; k < 300; ++k)
    calls += (k ? ", " : "") + std::string("{\"args\": [") + tensor("in") + "]}";
  const std::string bomb =
      "{\"class_name\": \"Functional\", \"config\": {\"name\": \"outer\", \"layers\": ["
      "{\"class_name\": \"InputLayer\", \"name\": \"in\", \"config\": {\"batch_shape\": "
      "[null, 4]}, \"inbound_nodes\": []}, {\"class_name\": \"Functional\", \"name\": \"m\", "
      "\"config\": {\"name\": \"m\", \"layers\": [" +
      inner +
      "], \"input_layers\": [\"i\", 0, 0], \"output_layers\": [\"a399\", 0, 0]}, "
      "\"inbound_nodes\": [" +
      calls +
      "]}], \"input_layers\": [\"in\", 0, 0], "
      "\"output_layers\": [\"m\", 1, 0]}}";
  write(scratch("bomb.json"), bomb);
  CHECK(load_error(scratch("bomb.json")).find("more than 100000 layers once the calls") !=
        std::string::npos);
  CHECK(load_error(scratch("bad_call.json"))
            .find("reads call 7 of 'shared_conv', which is called 2 time(s)") != std::string::npos);
}

TEST_CASE(
    "HDF5 is read in a child process: its results come back; its crash, hang or error is a clear "
    "error") {
  using frontend::keras::Hdf5Contents;
  using frontend::keras::read_isolated;
  Hdf5Contents c;
  c.config = std::string("{\"config\": 1}\0binary", 20);
  c.weights["conv"] = {ir::Tensor({3, 3, 2, 4}), ir::Tensor({4})};
  c.weights["conv"][0].data[7] = -2.5f;
  c.weights["empty"] = {};
  c.weights["no_elements"] = {ir::Tensor({0, 4})};  // a tensor without data crosses too
  const Hdf5Contents back = read_isolated("f.h5", 1000, [&] { return c; });
  CHECK(back.config == c.config);
  REQUIRE(back.weights.size() == 3);
  CHECK(back.weights.at("no_elements")[0].shape == ir::Shape{0, 4});
  CHECK(back.weights.at("no_elements")[0].data.empty());
  CHECK(back.weights.at("conv")[0].shape == ir::Shape{3, 3, 2, 4});
  CHECK(back.weights.at("conv")[0].data == c.weights["conv"][0].data);
  CHECK(back.weights.at("conv")[1].shape == ir::Shape{4});
  CHECK(back.weights.at("empty").empty());
  CHECK_THROWS_WITH_AS(
      read_isolated("bad.h5", 1000,
                    []() -> Hdf5Contents { throw Error("bad.h5: no 'layers' group"); }),
      "bad.h5: no 'layers' group", Error);
  CHECK_THROWS_WITH_AS(
      read_isolated("crash.h5", 1000,
                    []() -> Hdf5Contents {
                      std::raise(SIGSEGV);
                      return {};
                    }),
      doctest::Contains("crash.h5: the HDF5 library crashed reading it (signal 11"), Error);
  CHECK_THROWS_WITH_AS(read_isolated(
                           "hang.h5", 1000,
                           []() -> Hdf5Contents {
                             for (;;) pause();
                           },
                           0.5),
                       doctest::Contains("hang.h5: the HDF5 library did not finish reading it"),
                       Error);
  // Without an explicit limit, the process-wide one (the fuzz harness shortens it).
  frontend::keras::set_read_timeout(0.5);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH_AS(read_isolated("hang2.h5", 1000,
                                     []() -> Hdf5Contents {
                                       for (;;) pause();
                                     }),
                       doctest::Contains("hang2.h5: the HDF5 library did not finish reading it"),
                       Error);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));
  frontend::keras::set_read_timeout(120);
  // The memory limit: 1 GiB and 6 bytes per byte of the file; 3 GiB for a 1000-byte file is past
  // it (and would be allocated, and zeroed, without it).
  CHECK_THROWS_WITH_AS(read_isolated("big.h5", 1000,
                                     []() -> Hdf5Contents {
                                       std::vector<char> v(size_t{3} << 30);
                                       return {std::string(v.data(), 1), {}};
                                     }),
                       "big.h5: reading it needed more than the 1025 MiB of memory allowed for a "
                       "file of 1 KiB (a damaged or hostile file?); nothing was loaded",
                       Error);
}

TEST_CASE("legacy .h5 files that send HDF5 1.10 into an endless loop are an error, not a hang") {
  // Byte-mutated fixtures kept by the fuzzer (tools/fuzz.sh): one loops in H5Aread ->
  // H5T__conv_vlen over 'layer_names', the other in H5HG_read (the global heap) over
  // 'model_config'. cnnc's limit is 120 s; 1 s here.
  frontend::keras::set_read_timeout(1);
  for (const std::string name : {"vlen_list_loop.h5", "global_heap_loop.h5"}) {
    CAPTURE(name);
    const std::string path = test::source_path("tests/fixtures/hostile/" + name);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(load_error(path) ==
          path +
              ": the HDF5 library did not finish reading it in 1 s (a damaged or hostile file?); "
              "the reader was stopped");
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20));
  }
  frontend::keras::set_read_timeout(120);
}

TEST_CASE("a legacy .h5 whose dataset declares gigabytes it does not hold meets the memory limit") {
  // 2^30 floats declared, one 4 KiB chunk stored (tests/fixtures/hostile/README.md): reading it
  // would take 4 GiB; the reader child may take 1 GiB and 6 bytes per byte of the file.
  const std::string path = test::source_path("tests/fixtures/hostile/huge_dataset.h5");
  CHECK(load_error(path) ==
        path +
            ": reading it needed more than the 1025 MiB of memory allowed for "
            "a file of 22 KiB (a damaged or hostile file?); nothing was loaded");
}

TEST_CASE(
    "trained weights go back in Keras' layout: a .keras and a .weights.h5 that load with the new "
    "values") {
  for (const std::string name : {"separable", "batchnorm", "nested_tower", "nested_augment"}) {
    CAPTURE(name);
    const std::string source = (fixtures() / (name + ".keras")).string();
    std::vector<frontend::keras::WeightOrigin> origins;
    ir::Graph trained = frontend::keras::load(source, 1, &origins);
    REQUIRE(!origins.empty());
    // "Training": every weight the file gave moves by its own amount.
    float step = 0.25f;
    for (const auto& o : origins)
      for (float& v : trained.node(trained.find(o.node)).param(o.role)->value.data)
        v += (step += 0.001f);
    const std::string keras_out = scratch(name + ".trained.keras");
    const std::string json_out = scratch(name + ".trained.json");
    frontend::keras::save_weights(source, trained, keras_out);
    fs::copy_file(fixtures() / (name + ".json"), json_out, fs::copy_options::overwrite_existing);
    frontend::keras::save_weights(source, trained, scratch(name + ".trained.weights.h5"));
    CHECK(!fs::exists(keras_out + ".tmp"));
    for (const std::string& back : {keras_out, json_out}) {
      CAPTURE(back);
      const ir::Graph g = frontend::keras::load(back, 1);
      for (const auto& n : trained.nodes())
        for (const auto& p : n.params)
          CHECK(g.node(g.find(n.name)).param(p.role)->value.data == p.value.data);
    }
  }
}

TEST_CASE("writing Keras weights refuses what it cannot write, before anything is written") {
  const std::string source = (fixtures() / "batchnorm.keras").string();
  const ir::Graph g = frontend::keras::load(source, 1);
  CHECK(test::error_of([&] {
          frontend::keras::save_weights(source, g, scratch("w.npy"));
        }).find("written as NAME.weights.h5") != std::string::npos);
  CHECK(test::error_of([&] {
          frontend::keras::save_weights(source, g, source);
        }).find("is the file the model was loaded from") != std::string::npos);
  const std::string legacy = (fixtures() / "batchnorm.h5").string();
  CHECK(test::error_of([&] {
          frontend::keras::save_weights(legacy, g, scratch("w.weights.h5"));
        }).find("accepted: a .keras model, or a .json") != std::string::npos);
  const std::string json = (fixtures() / "batchnorm.json").string();
  CHECK(test::error_of([&] {
          frontend::keras::save_weights(json, g, scratch("w.keras"));
        }).find("a .keras is written from a .keras model") != std::string::npos);
  // The weights of another model: named, and no file is left.
  const ir::Graph other = frontend::keras::load((fixtures() / "separable.keras").string(), 1);
  const std::string out = scratch("other.weights.h5");
  fs::remove(out);
  CHECK(test::error_of([&] {
          frontend::keras::save_weights(source, other, out);
        }).find("was the network loaded from another model?") != std::string::npos);
  CHECK(!fs::exists(out));
  CHECK(!fs::exists(out + ".tmp"));
}
