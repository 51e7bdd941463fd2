// The runtime's file I/O: deterministic weight initialisation, the .cnnw weights file and
// NumPy .npy files, including every kind of bad file (each must be a cnnc::Error naming the
// file and what is wrong; never a crash, a huge allocation or half-changed weights).
#include <algorithm>
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "ir/atomic_file.h"
#include "ir/error.h"
#include "ir/text.h"
#include "runtime/dataset.h"
#include "runtime/npy.h"
#include "runtime/weights.h"
#include "tests/util.h"

namespace fs = std::filesystem;
namespace ir = cnnc::ir;
namespace rt = cnnc::runtime;
using cnnc::test::error_of;

namespace {

// A fresh folder under the system temp dir, removed with everything in it at scope end.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "cnnc_test_io_XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  REQUIRE(f);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f);
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Every kind of weight: conv (kernel, bias), batchnorm (gamma, beta, moving stats), dense.
constexpr const char* kNet = R"(network io
input     x    shape=8x8x3
conv2d    c1   filters=4 kernel=3 padding=same
batchnorm bn
conv2d    c2   filters=5 kernel=3
flatten   f
dense     d    units=7
)";

// Two branches declared in either order: the same names and shapes, different node order.
constexpr const char* kBranchesAB = R"(input x shape=6x6x2
conv2d a filters=3 kernel=3 <- x
conv2d b filters=3 kernel=1 padding=valid strides=1 <- x
conv2d b2 filters=3 kernel=3 <- b
add    s <- a, b2
)";
constexpr const char* kBranchesBA = R"(input x shape=6x6x2
conv2d b filters=3 kernel=1 padding=valid strides=1 <- x
conv2d b2 filters=3 kernel=3 <- b
conv2d a filters=3 kernel=3 <- x
add    s <- a, b2
)";

ir::Graph make(const char* text, uint64_t seed) {
  ir::Graph g = ir::parse(text, "test.cnn");
  rt::init_weights(g, seed);
  return g;
}

const ir::Tensor& weight(const ir::Graph& g, const std::string& layer, const std::string& role) {
  const ir::NodeId id = g.find(layer);
  REQUIRE(id >= 0);
  const ir::Param* p = g.node(id).param(role);
  REQUIRE(p != nullptr);
  return p->value;
}

// Bit-exact equality of every weight of two graphs with the same layers.
bool same_weights(const ir::Graph& a, const ir::Graph& b) {
  if (a.size() != b.size()) return false;
  for (const auto& n : a.nodes()) {
    const ir::NodeId id = b.find(n.name);
    if (id < 0) return false;
    for (const auto& p : n.params) {
      const ir::Param* q = b.node(id).param(p.role);
      if (!q || q->value.shape != p.value.shape || q->value.data.size() != p.value.data.size()) return false;
      if (std::memcmp(q->value.data.data(), p.value.data.data(), p.value.data.size() * sizeof(float)) != 0)
        return false;
    }
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// init_weights

TEST_CASE("init_weights: same seed, same values; another seed, other values") {
  const ir::Graph a = make(kNet, 7), b = make(kNet, 7), c = make(kNet, 8);
  CHECK(same_weights(a, b));
  CHECK_FALSE(same_weights(a, c));
  CHECK(weight(a, "c1", "kernel").data != weight(c, "c1", "kernel").data);
  CHECK(weight(a, "d", "kernel").data != weight(c, "d", "kernel").data);
  // Layers of one graph with one shape still get different values (the name enters the seed).
  const ir::Graph twins = make("input x shape=4x4x2\nconv2d p filters=2 kernel=3\nconv2d q filters=2 kernel=1\n"
                               "conv2d r filters=2 kernel=1\n", 1);
  CHECK(weight(twins, "q", "kernel").data != weight(twins, "r", "kernel").data);
}

TEST_CASE("init_weights: values do not depend on the order in which layers are declared") {
  const ir::Graph ab = make(kBranchesAB, 42), ba = make(kBranchesBA, 42);
  REQUIRE(ab.find("a") != ba.find("a"));  // really a different order
  CHECK(same_weights(ab, ba));
}

TEST_CASE("init_weights: Glorot-uniform limits, zero biases and betas, unit gammas and variances") {
  const ir::Graph g = make(kNet, 123);
  struct Kernel {
    const char* layer;
    double fan_in, fan_out;
  };
  // conv: fan_in = kh*kw*cin, fan_out = kh*kw*filters; dense: in, out.
  for (const Kernel& k : {Kernel{"c1", 3 * 3 * 3, 3 * 3 * 4}, Kernel{"c2", 3 * 3 * 4, 3 * 3 * 5},
                          Kernel{"d", 6 * 6 * 5, 7}}) {
    CAPTURE(k.layer);
    const ir::Tensor& t = weight(g, k.layer, "kernel");
    REQUIRE(static_cast<int64_t>(t.data.size()) == t.elements());
    const double limit = std::sqrt(6.0 / (k.fan_in + k.fan_out));
    double lo = 0, hi = 0, sum = 0;
    for (float v : t.data) {
      CHECK(std::abs(static_cast<double>(v)) <= limit);
      lo = std::min(lo, double(v));
      hi = std::max(hi, double(v));
      sum += v;
    }
    // Uniform over the whole range, not a constant or a tiny interval.
    CHECK(hi > 0.5 * limit);
    CHECK(lo < -0.5 * limit);
    CHECK(std::abs(sum / static_cast<double>(t.data.size())) < 0.25 * limit);
  }
  for (const char* layer : {"c1", "c2", "d"})
    for (float v : weight(g, layer, "bias").data) CHECK(v == 0.f);
  for (float v : weight(g, "bn", "gamma").data) CHECK(v == 1.f);
  for (float v : weight(g, "bn", "moving_variance").data) CHECK(v == 1.f);
  for (float v : weight(g, "bn", "beta").data) CHECK(v == 0.f);
  for (float v : weight(g, "bn", "moving_mean").data) CHECK(v == 0.f);
}

// ---------------------------------------------------------------------------------------------
// The weights file

TEST_CASE("save_weights then load_weights is bit-exact, and leaves no temporary file") {
  TempDir dir;
  const ir::Graph g = make(kNet, 5);
  const std::string path = dir.file("w.cnnw");
  rt::save_weights(g, path);
  CHECK(fs::exists(path));
  CHECK_FALSE(fs::exists(path + ".tmp"));
  ir::Graph h = ir::parse(kNet, "test.cnn");  // no weights yet
  rt::load_weights(h, path);
  CHECK(same_weights(g, h));
  // Saving again gives the same bytes.
  rt::save_weights(h, dir.file("w2.cnnw"));
  CHECK(read_bytes(path) == read_bytes(dir.file("w2.cnnw")));
  // Loading over existing weights replaces them.
  ir::Graph other = make(kNet, 6);
  REQUIRE_FALSE(same_weights(g, other));
  rt::load_weights(other, path);
  CHECK(same_weights(g, other));
}

TEST_CASE("load_weights: a layer of another shape is refused, naming the layer and both shapes") {
  TempDir dir;
  const std::string path = dir.file("w.cnnw");
  rt::save_weights(make(kNet, 5), path);
  // c2 has 6 filters instead of 5: c2's kernel 3x3x4x6, its bias 6, and d's kernel differ.
  std::string text = kNet;
  text.replace(text.find("filters=5"), 9, "filters=6");
  ir::Graph g = make(text.c_str(), 9);
  const ir::Graph before = g;
  const std::string msg = error_of([&] { rt::load_weights(g, path); });
  CHECK(contains(msg, path));
  CHECK(contains(msg, "'c2'"));
  CHECK(contains(msg, "kernel"));
  CHECK(contains(msg, "3x3x4x5"));  // in the file
  CHECK(contains(msg, "3x3x4x6"));  // what the layer needs
  // Nothing was loaded, not even the layers before c2 whose shapes agree.
  CHECK(same_weights(g, before));
}

TEST_CASE("load_weights: a layer missing from the file is refused, weights untouched") {
  TempDir dir;
  const std::string path = dir.file("w.cnnw");
  rt::save_weights(make(kNet, 5), path);
  std::string text = kNet;
  text += "dense extra units=3\n";
  ir::Graph g = make(text.c_str(), 9);
  const ir::Graph before = g;
  const std::string msg = error_of([&] { rt::load_weights(g, path); });
  CHECK(contains(msg, path));
  CHECK(contains(msg, "'extra'"));
  CHECK(contains(msg, "missing"));
  CHECK(same_weights(g, before));
}

TEST_CASE("load_weights: a truncated file is an error wherever it is cut") {
  TempDir dir;
  const std::string path = dir.file("w.cnnw");
  rt::save_weights(make(kNet, 5), path);
  const std::string bytes = read_bytes(path);
  std::vector<size_t> cuts = {0, 1, 7, 8, 9, 15, 16, 17, 40, bytes.size() / 2, bytes.size() - 4, bytes.size() - 1};
  // Every cut inside the header, too.
  uint64_t hlen = 0;
  std::memcpy(&hlen, bytes.data() + 8, 8);
  REQUIRE(hlen < bytes.size());
  for (size_t c = 16; c < 16 + hlen; c += 7) cuts.push_back(c);
  for (size_t cut : cuts) {
    CAPTURE(cut);
    const std::string cut_path = dir.file("cut.cnnw");
    write_bytes(cut_path, bytes.substr(0, cut));
    ir::Graph g = make(kNet, 9);
    const ir::Graph before = g;
    const std::string msg = error_of([&] { rt::load_weights(g, cut_path); });
    CHECK(contains(msg, cut_path));
    CHECK(same_weights(g, before));
  }
}

TEST_CASE("load_weights: files that are not weights files") {
  TempDir dir;
  ir::Graph g = make(kNet, 9);
  const ir::Graph before = g;
  auto refuse = [&](const std::string& name, const std::string& bytes, const std::string& expect) {
    CAPTURE(name);
    const std::string path = dir.file(name);
    write_bytes(path, bytes);
    const std::string msg = error_of([&] { rt::load_weights(g, path); });
    CHECK(contains(msg, path));
    CHECK(contains(msg, expect));
    CHECK(same_weights(g, before));
  };
  refuse("text.cnnw", "network io\ninput x shape=8x8x3\n", "not a cnnc weights file");
  refuse("npy.cnnw", std::string("\x93NUMPY\x01\x00", 8) + std::string(200, ' '), "not a cnnc weights file");
  refuse("empty.cnnw", "", "not a cnnc weights file");
  auto with_header = [](const std::string& json, size_t data_bytes = 0) {
    std::string s = "CNNCWTS1";
    const uint64_t len = json.size();
    s.append(reinterpret_cast<const char*>(&len), 8);
    return s + json + std::string(data_bytes, '\0');
  };
  refuse("badjson.cnnw", with_header("{\"layers\": {\"c1\": "), "corrupt header");
  refuse("notobject.cnnw", with_header("[1, 2, 3]"), "missing");
  refuse("nolayers.cnnw", with_header("{}"), "missing");
  refuse("badentry.cnnw", with_header(R"({"layers": {"c1": {"kernel": {"shape": "big", "offset": 0}}}})"),
         "malformed");
  refuse("badentry2.cnnw", with_header(R"({"layers": {"c1": {"kernel": 5}}})"), "malformed");
  // An offset far past the end of the file, and one that overflows when added to the size.
  refuse("offset.cnnw",
         with_header(R"({"layers": {"c1": {"kernel": {"shape": [3,3,3,4], "offset": 1000000000}}}})", 432),
         "truncated");
  refuse("offset2.cnnw",
         with_header(R"({"layers": {"c1": {"kernel": {"shape": [3,3,3,4], "offset": 18446744073709551615}}}})",
                     432),
         "truncated");
  // A header length that claims far more than the file holds.
  std::string huge = "CNNCWTS1";
  const uint64_t len = ~uint64_t{0} - 8;
  huge.append(reinterpret_cast<const char*>(&len), 8);
  refuse("hugeheader.cnnw", huge + "{}", "truncated");

  const std::string msg = error_of([&] { rt::load_weights(g, dir.file("absent.cnnw")); });
  CHECK(contains(msg, dir.file("absent.cnnw")));
  const std::string dmsg = error_of([&] { rt::load_weights(g, dir.path.string()); });
  CHECK(contains(dmsg, dir.path.string()));
}

TEST_CASE("save_weights: a failed save leaves the old file complete and no file of the new") {
  TempDir dir;
  const std::string path = dir.file("w.cnnw");
  const ir::Graph old_graph = make(kNet, 1);
  rt::save_weights(old_graph, path);
  const std::string old_bytes = read_bytes(path);

  SUBCASE("weights not set: refused before anything is written") {
    const ir::Graph bare = ir::parse(kNet, "test.cnn");
    const std::string msg = error_of([&] { rt::save_weights(bare, path); });
    CHECK(contains(msg, "not set"));
    CHECK(read_bytes(path) == old_bytes);
    CHECK_FALSE(fs::exists(dir.file("new.cnnw")));
    CHECK_THROWS_AS(rt::save_weights(bare, dir.file("new.cnnw")), cnnc::Error);
    CHECK_FALSE(fs::exists(dir.file("new.cnnw")));
  }
  SUBCASE("the disk fills up while writing (the temporary file is /dev/full)") {
    if (!fs::exists("/dev/full")) return;
    // The save writes PATH.tmp and renames it: make PATH.tmp a link to /dev/full, where every
    // write fails with ENOSPC, as it would on a full disk.
    // A small network's weights fit in the stream's buffer: only the final flush fails.
    const ir::Graph small = make("input x shape=2\ndense d units=2\n", 3);
    for (const std::string& target : {path, dir.file("new.cnnw")})
      for (const ir::Graph* g : {&small, &old_graph}) {
        CAPTURE(target);
        fs::create_symlink("/dev/full", target + ".tmp");
        const std::string msg = error_of([&] { rt::save_weights(*g, target); });
        CHECK(contains(msg, target));
        std::error_code ec;
        fs::remove(target + ".tmp", ec);
      }
    CHECK(fs::is_regular_file(fs::symlink_status(path)));
    CHECK(read_bytes(path) == old_bytes);
    CHECK_FALSE(fs::exists(fs::symlink_status(dir.file("new.cnnw"))));
    ir::Graph g = ir::parse(kNet, "test.cnn");
    rt::load_weights(g, path);
    CHECK(same_weights(g, old_graph));
  }
  SUBCASE("the temporary file cannot be created") {
    fs::create_directory(path + ".tmp");
    const std::string msg = error_of([&] { rt::save_weights(make(kNet, 2), path); });
    CHECK(contains(msg, path));
    CHECK(read_bytes(path) == old_bytes);
  }
  SUBCASE("a save killed mid-way leaves only PATH.tmp; the next save replaces both") {
    // What a kill between the write and the rename leaves: a partial PATH.tmp beside the old file.
    write_bytes(path + ".tmp", old_bytes.substr(0, old_bytes.size() / 3));
    CHECK(read_bytes(path) == old_bytes);
    const ir::Graph new_graph = make(kNet, 2);
    rt::save_weights(new_graph, path);
    CHECK_FALSE(fs::exists(path + ".tmp"));
    ir::Graph g = ir::parse(kNet, "test.cnn");
    rt::load_weights(g, path);
    CHECK(same_weights(g, new_graph));
  }
}

// ---------------------------------------------------------------------------------------------
// .npy files

namespace {

// The bytes numpy's np.save writes (format 1.0): magic, u16 header length, the header dict
// padded with spaces so that the data starts at a multiple of 64, a newline, the data.
std::string numpy_bytes(const std::string& descr, const std::string& shape, const std::string& data,
                        bool fortran = false, int version = 1) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                       ", 'shape': " + shape + ", }";
  const size_t prefix = version == 1 ? 10 : 12;
  while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string s = "\x93NUMPY";
  s += static_cast<char>(version);
  s += '\0';
  if (version == 1) {
    const uint16_t len = static_cast<uint16_t>(header.size());
    s.append(reinterpret_cast<const char*>(&len), 2);
  } else {
    const uint32_t len = static_cast<uint32_t>(header.size());
    s.append(reinterpret_cast<const char*>(&len), 4);
  }
  return s + header + data;
}

template <class T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

}  // namespace

TEST_CASE("write_npy then read_npy round-trips ranks 1 to 4 bit-exactly") {
  TempDir dir;
  std::mt19937 rng(11);
  for (const ir::Shape& shape : {ir::Shape{5}, ir::Shape{1}, ir::Shape{3, 4}, ir::Shape{2, 3, 4},
                                 ir::Shape{2, 5, 3, 7}, ir::Shape{1, 1, 1, 1}, ir::Shape{0, 3}}) {
    CAPTURE(ir::shape_to_string(shape, true));
    ir::Tensor t = cnnc::test::random_tensor(shape, rng);
    if (!t.data.empty()) {
      t.data[0] = -0.f;
      t.data.back() = 1e-38f;  // denormal-adjacent values survive too
    }
    const std::string path = dir.file("t.npy");
    rt::write_npy(path, t);
    const std::string bytes = read_bytes(path);
    // numpy's layout: the data starts at a multiple of 64 and the file is exactly that long.
    uint16_t hlen = 0;
    std::memcpy(&hlen, bytes.data() + 8, 2);
    CHECK((10 + hlen) % 64 == 0);
    CHECK(bytes.size() == 10 + hlen + t.data.size() * 4);
    CHECK(bytes[10 + hlen - 1] == '\n');
    const ir::Tensor back = rt::read_npy(path);
    CHECK(back.shape == t.shape);
    REQUIRE(back.data.size() == t.data.size());
    CHECK(std::memcmp(back.data.data(), t.data.data(), t.data.size() * 4) == 0);
  }
}

TEST_CASE("write_npy writes exactly what numpy writes") {
  TempDir dir;
  ir::Tensor t({2, 3});
  t.data = {0.f, 0.5f, 1.f, 1.5f, 2.f, 2.5f};
  rt::write_npy(dir.file("t.npy"), t);
  // np.save(f, (np.arange(6, dtype=np.float32) * 0.5).reshape(2, 3)), byte for byte.
  const std::string numpy =
      std::string("\x93NUMPY\x01\x00v\x00", 10) +
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + std::string(58, ' ') + "\n" +
      std::string("\x00\x00\x00\x00\x00\x00\x00?\x00\x00\x80?\x00\x00\xc0?\x00\x00\x00@\x00\x00 @", 24);
  REQUIRE(numpy.size() == 128 + 24);
  CHECK(read_bytes(dir.file("t.npy")) == numpy);
}

TEST_CASE("read_npy reads files as numpy writes them: float32, float64, version 2, scalars") {
  TempDir dir;
  SUBCASE("float32, rank 4") {
    write_bytes(dir.file("a.npy"), numpy_bytes("<f4", "(1, 2, 2, 1)", raw(std::vector<float>{0, 1, 2, 3})));
    const ir::Tensor t = rt::read_npy(dir.file("a.npy"));
    CHECK(t.shape == ir::Shape{1, 2, 2, 1});
    CHECK(t.data == std::vector<float>{0, 1, 2, 3});
  }
  SUBCASE("float64 is converted") {
    // np.save(f, np.array([1.5, -2.25, 3.0])), byte for byte.
    const std::string numpy =
        std::string("\x93NUMPY\x01\x00v\x00", 10) + "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }" +
        std::string(60, ' ') + "\n" +
        std::string("\x00\x00\x00\x00\x00\x00\xf8?\x00\x00\x00\x00\x00\x00\x02\xc0\x00\x00\x00\x00\x00\x00\x08@", 24);
    REQUIRE(numpy == numpy_bytes("<f8", "(3,)", raw(std::vector<double>{1.5, -2.25, 3.0})));
    write_bytes(dir.file("b.npy"), numpy);
    const ir::Tensor t = rt::read_npy(dir.file("b.npy"));
    CHECK(t.shape == ir::Shape{3});
    CHECK(t.data == std::vector<float>{1.5f, -2.25f, 3.f});
  }
  SUBCASE("format version 2.0 (a 4-byte header length)") {
    write_bytes(dir.file("c.npy"), numpy_bytes("<f4", "(2, 2)", raw(std::vector<float>{1, 2, 3, 4}), false, 2));
    const ir::Tensor t = rt::read_npy(dir.file("c.npy"));
    CHECK(t.shape == ir::Shape{2, 2});
    CHECK(t.data == std::vector<float>{1, 2, 3, 4});
  }
  SUBCASE("a 0-d array") {
    write_bytes(dir.file("d.npy"), numpy_bytes("<f4", "()", raw(std::vector<float>{7})));
    const ir::Tensor t = rt::read_npy(dir.file("d.npy"));
    CHECK(t.shape.empty());
    CHECK(t.data == std::vector<float>{7});
  }
}

TEST_CASE("read_npy: bad files are clear errors naming the file") {
  TempDir dir;
  const std::string f4 = raw(std::vector<float>(6, 1.f));
  auto refuse = [&](const std::string& name, const std::string& bytes, std::vector<std::string> expect) {
    CAPTURE(name);
    const std::string path = dir.file(name);
    write_bytes(path, bytes);
    const std::string msg = error_of([&] { rt::read_npy(path); });
    CHECK(contains(msg, path));
    for (const auto& e : expect) {
      CAPTURE(e);
      CHECK(contains(msg, e));
    }
    return msg;
  };
  refuse("magic.npy", "\x93NUMPX" + numpy_bytes("<f4", "(2, 3)", f4).substr(6), {"not a .npy file"});
  refuse("text.npy", "network io\ninput x shape=8x8x3\n", {"not a .npy file"});
  refuse("empty.npy", "", {"not a .npy file"});
  refuse("short.npy", "\x93NU", {"not a .npy file"});
  std::string v9 = numpy_bytes("<f4", "(2, 3)", f4);
  v9[6] = 9;
  refuse("version.npy", v9, {"version 9", "accepted: 1.0, 2.0, 3.0"});
  refuse("c8.npy", numpy_bytes("<c8", "(2, 3)", f4), {"<c8", "not supported", "float32 (<f4)", "uint8 (|u1)"});
  refuse("f2.npy", numpy_bytes("<f2", "(2, 3)", f4), {"<f2", "float32 (<f4)"});
  refuse("bigendian.npy", numpy_bytes(">f4", "(2, 3)", f4), {">f4", "float32 (<f4)"});
  refuse("fortran.npy", numpy_bytes("<f4", "(2, 3)", f4, true), {"Fortran"});
  refuse("truncated.npy", numpy_bytes("<f4", "(2, 3)", f4.substr(0, 20)), {"truncated"});
  refuse("truncated64.npy", numpy_bytes("<f8", "(2, 3)", f4), {"truncated"});
  refuse("truncated_i8.npy", numpy_bytes("<i8", "(2, 3)", f4), {"truncated"});
  refuse("nodata.npy", numpy_bytes("<f4", "(2, 3)", ""), {"truncated"});
  refuse("noshape.npy", numpy_bytes("<f4", "[2, 3]", f4), {"shape"});
  refuse("negative.npy", numpy_bytes("<f4", "(-1, 6)", f4), {});
  // Header cut short, and a header length beyond the file.
  refuse("cuthead.npy", numpy_bytes("<f4", "(2, 3)", f4).substr(0, 30), {});
  std::string long_header = numpy_bytes("<f4", "(2, 3)", f4, false, 2);
  const uint32_t big = 1000000;
  std::memcpy(long_header.data() + 8, &big, 4);
  refuse("longhead.npy", long_header, {});
  const uint32_t huge = 0xffffffffu;
  std::memcpy(long_header.data() + 8, &huge, 4);
  refuse("hugehead.npy", long_header, {});
  // Absurd shapes: refused from the header alone, without allocating anything like their size.
  refuse("absurd.npy", numpy_bytes("<f4", "(99999999999, 99999999999)", f4), {});
  refuse("overflow.npy", numpy_bytes("<f4", "(4294967296, 4294967296, 4294967296)", f4), {});
  // Under 2^31 elements but 6.4 GB: the file is 24 bytes of data, so it is truncated.
  refuse("big.npy", numpy_bytes("<f4", "(40000, 40000)", f4), {"truncated"});
  refuse("big64.npy", numpy_bytes("<f8", "(40000, 40000)", f4), {"truncated"});

  const std::string msg = error_of([&] { rt::read_npy(dir.file("absent.npy")); });
  CHECK(contains(msg, dir.file("absent.npy")));
  const std::string dmsg = error_of([&] { rt::read_npy(dir.path.string()); });
  CHECK(contains(dmsg, dir.path.string()));
}

TEST_CASE("write_npy: a failed write is an error, not a silently short file") {
  TempDir dir;
  ir::Tensor t({4, 4});
  CHECK(contains(error_of([&] { rt::write_npy(dir.file("no/such/dir/t.npy"), t); }), "no/such/dir/t.npy"));
  if (fs::exists("/dev/full")) CHECK(contains(error_of([&] { rt::write_npy("/dev/full", t); }), "/dev/full"));
}

TEST_CASE("init_weights leaves weights that are already set (e.g. read from a model file)") {
  ir::Graph g = ir::parse("input x shape=4x4x2\nconv2d c filters=2 kernel=3 padding=same\n", "t.cnn");
  auto& kernel = g.node(1).params[0].value;
  kernel.data.assign(static_cast<size_t>(kernel.elements()), 0.25f);
  rt::init_weights(g, 3);
  CHECK(std::all_of(kernel.data.begin(), kernel.data.end(), [](float v) { return v == 0.25f; }));
  CHECK(g.node(1).params[1].value.data.size() == 2);  // the bias was empty: now set
}

TEST_CASE("npy: integer arrays (uint8 images, int64 labels) are read as float") {
  TempDir dir;
  write_bytes(dir.file("u8.npy"), numpy_bytes("|u1", "(2, 2)", std::string("\x00\x07\xff\x80", 4)));
  CHECK(rt::read_npy(dir.file("u8.npy")).data == std::vector<float>{0, 7, 255, 128});
  write_bytes(dir.file("i8.npy"), numpy_bytes("<i8", "(3,)", raw(std::vector<int64_t>{9, -2, 1 << 20})));
  CHECK(rt::read_npy(dir.file("i8.npy")).data == std::vector<float>{9, -2, 1 << 20});
}

namespace {

std::string be32(uint32_t v) {
  return {char(v >> 24), char(v >> 16 & 255), char(v >> 8 & 255), char(v & 255)};
}
// IDX files of n images of h x w bytes (pixel i = i % 251) and n labels (i % 10).
std::string idx_images(uint32_t n, uint32_t h, uint32_t w, uint32_t magic = 2051) {
  std::string s = be32(magic) + be32(n) + be32(h) + be32(w);
  for (uint32_t i = 0; i < n * h * w; ++i) s += char(i % 251);
  return s;
}
std::string idx_labels(uint32_t n, uint32_t magic = 2049, int top = 10) {
  std::string s = be32(magic) + be32(n);
  for (uint32_t i = 0; i < n; ++i) s += char(i % top);
  return s;
}

}  // namespace

TEST_CASE("datasets: IDX pairs and .npy pairs are read; bad files are refused by name") {
  TempDir dir;
  write_bytes(dir.file("img"), idx_images(5, 3, 4));
  write_bytes(dir.file("lab"), idx_labels(5));
  const rt::Dataset ds = rt::read_idx(dir.file("img"), dir.file("lab"));
  CHECK(ds.images.shape == ir::Shape{5, 3, 4, 1});
  CHECK(ds.images.data[13] == 13.f);
  CHECK(ds.labels == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(ds.from_uint8);
  auto refuse = [&](const std::string& images, const std::string& labels, std::vector<std::string> expect) {
    write_bytes(dir.file("i"), images);
    write_bytes(dir.file("l"), labels);
    const std::string msg = error_of([&] { rt::read_idx(dir.file("i"), dir.file("l")); });
    for (const auto& e : expect) {
      CAPTURE(msg);
      CHECK(contains(msg, e));
    }
  };
  refuse(idx_images(5, 3, 4, 2049), idx_labels(5), {"not an IDX image file: magic number 2049, expected 2051"});
  refuse(idx_images(5, 3, 4), idx_labels(5, 2051), {"not an IDX label file: magic number 2051, expected 2049"});
  refuse(idx_images(5, 3, 4).substr(0, 40), idx_labels(5), {"promises 60 bytes of data, the file holds 24 (truncated)"});
  refuse(idx_images(5, 3, 4), idx_labels(4), {"holds 4 labels", "holds 5 images"});
  refuse("", idx_labels(5), {"not an IDX image file"});
  // .npy pairs: N x H x W images get one channel; labels must be whole, non-negative, as many.
  write_bytes(dir.file("x.npy"), numpy_bytes("|u1", "(2, 2, 3)", std::string(12, '\x05')));
  write_bytes(dir.file("y.npy"), numpy_bytes("<i8", "(2,)", raw(std::vector<int64_t>{3, 1})));
  const rt::Dataset np = rt::read_npy_pair(dir.file("x.npy"), dir.file("y.npy"));
  CHECK(np.images.shape == ir::Shape{2, 2, 3, 1});
  CHECK(np.labels == std::vector<int64_t>{3, 1});
  CHECK(np.from_uint8);
  write_bytes(dir.file("y3.npy"), numpy_bytes("<i8", "(3,)", raw(std::vector<int64_t>{3, 1, 0})));
  CHECK(contains(error_of([&] { rt::read_npy_pair(dir.file("x.npy"), dir.file("y3.npy")); }), "holds 3 labels"));
  write_bytes(dir.file("yf.npy"), numpy_bytes("<f4", "(2,)", raw(std::vector<float>{0.5f, 1})));
  CHECK(contains(error_of([&] { rt::read_npy_pair(dir.file("x.npy"), dir.file("yf.npy")); }), "not a class index"));
  write_bytes(dir.file("yn.npy"), numpy_bytes("<i8", "(2,)", raw(std::vector<int64_t>{-1, 1})));
  CHECK(contains(error_of([&] { rt::read_npy_pair(dir.file("x.npy"), dir.file("yn.npy")); }), "label 0 is -1"));
  write_bytes(dir.file("x1.npy"), numpy_bytes("<f4", "(2, 6)", raw(std::vector<float>(12, 0.f))));
  CHECK(contains(error_of([&] { rt::read_npy_pair(dir.file("x1.npy"), dir.file("y.npy")); }), "accepted: N x H x W x C"));
  CHECK(contains(error_of([&] { rt::load_dataset(dir.path.string(), "test"); }), "t10k-images-idx3-ubyte[.gz] is missing"));
  CHECK(contains(error_of([&] { rt::load_dataset("fashion-mnist", "validation"); }), "accepted: train, test"));
}

TEST_CASE("datasets: Debian's Fashion-MNIST (gzip'd IDX) has its 10,000 test images of 10 classes") {
  const rt::Dataset ds = rt::load_dataset("fashion-mnist", "test");
  CHECK(ds.images.shape == ir::Shape{10000, 28, 28, 1});
  REQUIRE(ds.labels.size() == 10000);
  CHECK(*std::max_element(ds.labels.begin(), ds.labels.end()) == 9);
  CHECK(*std::max_element(ds.images.data.begin(), ds.images.data.end()) == 255.f);
}

TEST_CASE("datasets: CIFAR-10 binary batches (label byte, R, G, B planes) become N x 32 x 32 x 3") {
  TempDir dir;
  // Record r: label r % 10, plane c of pixel p holds (r + 3 * p + 7 * c) % 256.
  auto batch = [](int first, int n, int bad_label = -1) {
    std::string s;
    for (int r = first; r < first + n; ++r) {
      s += char(r == bad_label ? 10 : r % 10);
      for (int c = 0; c < 3; ++c)
        for (int p = 0; p < 1024; ++p) s += char((r + 3 * p + 7 * c) % 256);
    }
    return s;
  };
  write_bytes(dir.file("data_batch_1.bin"), batch(0, 3));
  write_bytes(dir.file("data_batch_2.bin"), batch(3, 2));
  write_bytes(dir.file("test_batch.bin"), batch(100, 4));
  const rt::Dataset train = rt::load_dataset(dir.path.string(), "train");
  CHECK(train.images.shape == ir::Shape{5, 32, 32, 3});
  CHECK(train.labels == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(train.from_uint8);
  // Record 4 (the second file's second), pixel (row 2, column 5) = p 69, green.
  CHECK(train.images.data[((4 * 32 + 2) * 32 + 5) * 3 + 1] == float((4 + 3 * 69 + 7) % 256));
  const rt::Dataset test = rt::load_dataset(dir.path.string(), "test");
  CHECK(test.images.shape == ir::Shape{4, 32, 32, 3});
  CHECK(test.labels.front() == 0);
  CHECK(rt::load_dataset(dir.file("data_batch_2.bin"), "train").labels == std::vector<int64_t>{3, 4});
  write_bytes(dir.file("short.bin"), batch(0, 2).substr(0, 5000));
  CHECK(contains(error_of([&] { rt::load_dataset(dir.file("short.bin"), "train"); }),
                 "5000 bytes, not a whole number of CIFAR-10 records"));
  write_bytes(dir.file("label.bin"), batch(0, 3, 1));
  CHECK(contains(error_of([&] { rt::load_dataset(dir.file("label.bin"), "train"); }),
                 "record 1 has label 10; CIFAR-10's labels are 0..9"));
  TempDir only_test;
  write_bytes(only_test.file("test_batch.bin"), batch(0, 1));
  CHECK(contains(error_of([&] { rt::load_dataset(only_test.path.string(), "train"); }),
                 "no data_batch_1.bin ... data_batch_5.bin"));
}

TEST_CASE("files are replaced whole or not at all") {
  TempDir dir;
  const std::string path = (dir.path / "atomic.txt").string();
  auto read = [](const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  ir::write_file_atomically(path, "first");
  ir::write_file_atomically(path, "second, longer");
  CHECK(read(path) == "second, longer");
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  // A file another writer did not finish (no tmp) or a folder that is not there: an error that
  // names the file, and the old file unchanged.
  CHECK(error_of([&] { ir::replace_file(path + ".missing", path); }).find(path + ": cannot replace") == 0);
  CHECK(read(path) == "second, longer");
  const std::string nowhere = path + ".d/sub/file.txt";
  CHECK(error_of([&] { ir::write_file_atomically(nowhere, "x"); }).find(nowhere + ": cannot write") == 0);
}
