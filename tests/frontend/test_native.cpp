// frontend::load on the native format: the example models, and bad files, each of which must
// fail with a message that names file:line, the layer and what would be accepted.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "frontend/load.h"
#include "ir/error.h"
#include "ir/shape_inference.h"
#include "ir/text.h"
#include "tests/util.h"

namespace fs = std::filesystem;
namespace ir = cnnc::ir;
using cnnc::frontend::load;

namespace {

// A fresh folder under the system's temp directory, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("cnnc-test-native-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  // Writes `content` to `name` and returns the file's path.
  std::string write(const std::string& name, const std::string& content) const {
    const fs::path p = path / name;
    std::ofstream f(p, std::ios::binary);
    f << content;
    return p.string();
  }
};

std::string load_error(const std::string& path, int64_t batch = 1) {
  try {
    load(path, batch);
  } catch (const cnnc::Error& e) {
    return e.what();
  }
  FAIL("no error loading " << path);
  return {};
}

void check_contains(const std::string& msg, const std::vector<std::string>& parts) {
  for (const auto& p : parts) CHECK_MESSAGE(msg.find(p) != std::string::npos, "'" << p << "' not in: " << msg);
}

using ir::total_params;

}  // namespace

TEST_CASE("the example models load") {
  struct Expect {
    const char* name;
    int64_t params;
  };
  for (const Expect& e : {Expect{"seed_layer", 760}, Expect{"lenet5", 61706}, Expect{"cifar10_cnn", 1250858},
                          Expect{"alexnet", 62378344}, Expect{"vgg16", 138357544}, Expect{"resnet_mini", 22930}}) {
    CAPTURE(e.name);
    const std::string path = cnnc::test::source_path(std::string("models/") + e.name + ".cnn");
    ir::Graph g = load(path);
    CHECK(g.name == e.name);
    CHECK(g.source == path);
    CHECK(g.batch() == 1);
    CHECK(total_params(g) == e.params);
    ir::verify(g);
    // Every layer remembers its line, for messages.
    for (const auto& n : g.nodes()) CHECK(n.line > 0);
    ir::Graph b = load(path, 32);
    CHECK(b.batch() == 32);
    CHECK(b.node(0).type.shape[0] == 32);
    CHECK(ir::print(b) == ir::print(g));
  }
  // A layer's location is where it was written.
  ir::Graph lenet = load(cnnc::test::source_path("models/lenet5.cnn"));
  const ir::Node& c3 = lenet.node(lenet.find("c3"));
  CHECK(lenet.where(c3).find("lenet5.cnn:" + std::to_string(c3.line) + ": layer 'c3' (conv2d)") != std::string::npos);
}

TEST_CASE("files that cannot be read") {
  TempDir dir;
  SUBCASE("missing file") {
    const std::string p = (dir.path / "absent.cnn").string();
    CHECK(load_error(p) == p + ": no such file");
  }
  SUBCASE("a directory") {
    fs::create_directory(dir.path / "net.cnn");
    const std::string p = (dir.path / "net.cnn").string();
    CHECK(load_error(p) == p + ": is a directory, not a network file (.cnn)");
  }
  SUBCASE("unknown extension") {
    const std::string p = dir.write("net.txt", "input x shape=4\n");
    check_contains(load_error(p), {p, "unknown format '.txt'", "accepted: .cnn", "docs/format.md"});
    const std::string none = dir.write("net", "input x shape=4\n");
    check_contains(load_error(none), {none, "unknown format ''", "accepted: .cnn"});
  }
  SUBCASE("a .onnx file goes to the ONNX reader; Keras files are read by the Keras reader") {
    const std::string onnx = dir.write("m.onnx", "input x shape=4");
    check_contains(load_error(onnx), {onnx, "not an ONNX model"});
    const std::string keras = dir.write("m.keras", "{}");
    check_contains(load_error(keras), {keras, "not a readable .keras archive"});
    const std::string h5 = dir.write("m.h5", "{}");
    check_contains(load_error(h5), {h5, "not an HDF5 file"});
    const std::string json = dir.write("m.json", "{}");
    check_contains(load_error(json), {json, "no class_name/config"});
  }
  SUBCASE("an oversized file") {
    const std::string p = dir.write("big.cnn", std::string((16u << 20) + 1, '#'));
    check_contains(load_error(p), {p, "larger than 16 MiB", "not a network description"});
  }
}

TEST_CASE("malformed networks: file:line, the layer, and what is accepted") {
  TempDir dir;
  auto bad = [&](const std::string& text) { return dir.write("bad.cnn", text); };
  const std::string img = "network t\ninput x shape=7x7x1\n";  // layers below start on line 3

  SUBCASE("unknown layer type") {
    const std::string p = bad(img + "conv3d c filters=1 kernel=3\n");
    check_contains(load_error(p), {p + ":3:", "unknown layer type 'conv3d'", "accepted are: input, conv2d, dense",
                                   "zeropadding2d, dropout", "the statements network, output"});
  }
  SUBCASE("unknown attribute") {
    const std::string p = bad(img + "conv2d c filters=1 kernel=3 stride=2\n");
    check_contains(load_error(p), {p + ":3:", "layer 'c' (conv2d)", "unknown attribute 'stride'",
                                   "accepted: filters, kernel, strides, padding, dilation, groups, use_bias, round, epilogue, schedule, "
                                   "activation"});
  }
  SUBCASE("bad attribute value") {
    const std::string p = bad(img + "conv2d c filters=ten kernel=3\n");
    check_contains(load_error(p), {p + ":3:", "layer 'c' (conv2d)", "attribute 'filters': 'ten' is not an integer"});
    const std::string q = bad(img + "maxpool2d m pool=2 padding=2,2\n");
    check_contains(load_error(q), {q + ":3:", "layer 'm' (maxpool2d)",
                                   "'2,2' is not valid, same, P, or top,bottom,left,right"});
    const std::string r = bad("input x shape=7x0x1\n");
    check_contains(load_error(r), {r + ":1:", "layer 'x' (input)", "'7x0x1' is not positive sizes like 32x32x3"});
  }
  SUBCASE("missing required attribute") {
    const std::string p = bad(img + "conv2d c kernel=3\n");
    check_contains(load_error(p), {p + ":3:", "layer 'c' (conv2d)", "missing required attribute 'filters'",
                                   "required: filters, kernel"});
    const std::string q = bad("input x\n");
    check_contains(load_error(q), {q + ":1:", "layer 'x' (input)", "missing required attribute 'shape'"});
  }
  SUBCASE("duplicate name") {
    const std::string p = bad(img + "relu r\n\nrelu r\n");
    check_contains(load_error(p), {p + ":5:", "layer 'r' (relu)", "already used", "names must be unique"});
    // activation= names its layer NAME.act; that name is taken too.
    const std::string q = bad(img + "conv2d c filters=1 kernel=1 activation=relu\nrelu c.relu\n");
    check_contains(load_error(q), {q + ":4:", "layer 'c.relu' (relu)", "already used"});
  }
  SUBCASE("unknown input name") {
    const std::string p = bad(img + "conv2d c filters=1 kernel=3 <- y\n");
    check_contains(load_error(p), {p + ":3:", "layer 'c' (conv2d)", "unknown input 'y'",
                                   "inputs must name a layer defined above"});
    // Defined later is not defined above.
    const std::string q = bad(img + "add a <- x, b\nrelu b\n");
    check_contains(load_error(q), {q + ":3:", "layer 'a' (add)", "unknown input 'b'"});
  }
  SUBCASE("wrong arity") {
    const std::string p = bad(img + "add a <- x\n");
    check_contains(load_error(p), {p + ":3:", "layer 'a' (add)", "takes at least 2 input(s), got 1"});
    const std::string q = bad(img + "relu r <- x, x\n");
    check_contains(load_error(q), {q + ":3:", "layer 'r' (relu)", "takes 1 input(s), got 2"});
    const std::string r = bad(img + "concat c\n");
    check_contains(load_error(r), {r + ":3:", "layer 'c' (concat)", "takes at least 2 input(s), got 1"});
  }
  SUBCASE("first layer not input") {
    const std::string p = bad("# no input\nconv2d c filters=1 kernel=3\n");
    check_contains(load_error(p), {p + ":2:", "layer 'c' (conv2d)", "has no input",
                                   "the first layer must be an input layer"});
  }
  SUBCASE("impossible conv shape: (7 - 3)/3 + 1") {
    const std::string p = bad(img + "conv2d c filters=1 kernel=3 strides=3\n");
    check_contains(load_error(p), {p + ":3:", "layer 'c' (conv2d)", "(7 - 3 + 0)/3 + 1 = 2.33 is not an integer",
                                   "input height 6 or 9", "padding=same", "round=floor"});
  }
  SUBCASE("shapes that do not combine") {
    const std::string p = bad(img + "conv2d c filters=2 kernel=3\nadd a <- c, x\n");
    check_contains(load_error(p), {p + ":4:", "layer 'a' (add)", "input 1 is 5x5x2, input 2 is 7x7x1"});
    const std::string q = bad(img + "flatten f\nconv2d c filters=1 kernel=1\n");
    check_contains(load_error(q), {q + ":4:", "layer 'c' (conv2d)", "rank-4 input", "got 49"});
  }
  SUBCASE("control characters and binary garbage") {
    const std::string p = bad(img + "relu r\x1b[31m\n");
    check_contains(load_error(p), {p + ":3:", "control character", "plain text"});
    const std::string q = bad(std::string("\x7f" "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0\x3e\0", 20));
    check_contains(load_error(q), {q + ":1:", "control character"});
    // Bytes that are not control characters still never make a layer.
    std::string garbage;
    for (int i = 0; i < 4096; ++i) garbage += static_cast<char>((i * 7919 + 13) % 256);
    const std::string r = bad(garbage);
    check_contains(load_error(r), {r + ":"});
    const std::string s = bad("\xef\xbb\xbfinput x shape=4\n");  // a UTF-8 byte order mark
    check_contains(load_error(s), {s + ":1:", "unknown layer type"});
  }
  SUBCASE("empty file") {
    const std::string p = bad("");
    CHECK(load_error(p) == p + ": no layers; a network starts with an input layer");
    const std::string q = bad("# just a comment\n\n   \n");
    CHECK(load_error(q) == q + ": no layers; a network starts with an input layer");
  }
  SUBCASE("huge declared input shape") {
    const std::string p = bad("input x shape=100000x100000x3\n");
    check_contains(load_error(p), {p + ":1:", "layer 'x' (input)", "1x100000x100000x3",
                                   "more than 2^31 - 1 elements"});
    const std::string q = bad("input x shape=123456789012345678901234567890x1x1\n");
    check_contains(load_error(q), {q + ":1:", "layer 'x' (input)", "is not positive sizes"});
    // Fine on its own, too large at batch 1024.
    const std::string r = bad("input x shape=1024x1024x3\n");
    CHECK(load(r).node(0).type.shape == ir::Shape{1, 1024, 1024, 3});
    check_contains(load_error(r, 1024), {r + ":1:", "more than 2^31 - 1 elements"});
    check_contains(load_error(r, 0), {r, "batch size must be >= 1"});
  }
  SUBCASE("an input line before any layer") {
    const std::string p = bad(img + "<- x\n");
    check_contains(load_error(p), {p + ":3:", "nothing before '<-'"});
  }
}

TEST_CASE("a good file next to the bad ones loads, and the error type is cnnc::Error") {
  TempDir dir;
  const std::string good = dir.write("ok.cnn", "input x shape=7x7x1\nconv2d c filters=1 kernel=3 strides=2\n");
  CHECK(load(good).node(1).type.shape == ir::Shape{1, 3, 3, 1});
  const std::string bad = dir.write("bad.cnn", "input x shape=7x7x1\nconv2d c filters=1 kernel=3 strides=3\n");
  CHECK_THROWS_AS(load(bad), cnnc::Error);
  CHECK_THROWS_WITH_AS(load(bad), doctest::Contains("bad.cnn:2: layer 'c' (conv2d): height:"), cnnc::Error);
}
