// cnnc export: every distinct kernel compiled ahead of time to an object for the target, Halide's
// runtime for it, and an executor generated as C (the memory plan's offsets and the kernel
// calls in order, each a halide_buffer_t per argument), compiled by the target's C compiler and
// archived with them into one static library. Nothing else to link but libc, libm, pthreads.
#include "codegen/export.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "codegen/compile.h"
#include "codegen/lower.h"
#include "codegen/spawn.h"
#include "ir/error.h"
#include "ir/text.h"

namespace cnnc::codegen {

namespace fs = std::filesystem;
using namespace Halide;

namespace {

constexpr char kWeightsMagic[8] = {'C', 'N', 'N', 'C', 'W', 'B', '0', '1'};

// The target's C compiler and archiver: $CC/$AR for the host, the Debian cross toolchain's for
// an Arm target.
struct Toolchain {
  std::string cc, ar, package;
};
Toolchain toolchain(const Target& t) {
  if (t.arch == Target::ARM && t.bits == 64)
    return {"aarch64-linux-gnu-gcc", "aarch64-linux-gnu-ar", "gcc-aarch64-linux-gnu"};
  const char* cc = std::getenv("CC");
  const char* ar = std::getenv("AR");
  return {cc && *cc ? cc : "cc", ar && *ar ? ar : "ar", "build-essential"};
}

// A C identifier from a name: letters, digits and '_' (a leading digit gets a '_').
std::string c_identifier(const std::string& name) {
  std::string s;
  for (char c : name) s += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) s = "_" + s;
  return s;
}

std::string c_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// One kernel call of the executor: the function, and per argument where its data is (a node's
// storage in the arena, or a weight at an offset in the weight blob) and its dims.
struct Call {
  std::string layer, function;
  struct Arg {
    bool weight;
    int64_t offset;  // floats: into the arena, or into the weights
    std::vector<int> dims;
  };
  std::vector<Arg> args;  // inputs, weights, then the output
};

std::string header(const std::string& N, const ir::Graph& g) {
  std::ostringstream h;
  const std::string G = [&] {
    std::string u;
    for (char c : N) u += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return u;
  }();
  h << "/* " << N << ": the network '" << g.name << "' compiled ahead of time by cnnc export.\n"
    << " * Link with lib" << N << ".a, -lm and -lpthread (and -ldl). One " << N
    << "_model runs one batch at a time;\n"
    << " * use one model per thread. Tensors are float32, batch first, channels last (NHWC). */\n"
    << "#ifndef " << G << "_H\n#define " << G << "_H\n\n#include <stdint.h>\n\n"
    << "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n";
  const auto ins = g.inputs(), outs = g.outputs();
  // Constants carry the API's prefix as given (lenet5_INPUT0_SHAPE beside lenet5_run).
  h << "enum { " << N << "_NUM_INPUTS = " << ins.size() << ", " << N
    << "_NUM_OUTPUTS = " << outs.size() << ", " << N << "_BATCH = " << g.batch() << " };\n";
  auto shapes = [&](const std::string& what, const std::vector<ir::NodeId>& ids) {
    h << "/* The " << what << "s, in order: name, rank, shape (batch first), elements. */\n";
    for (size_t i = 0; i < ids.size(); ++i) {
      const ir::Node& n = g.node(ids[i]);
      const std::string p = "#define " + N + "_" + (what == "input" ? "INPUT" : "OUTPUT") +
                            std::to_string(i);
      h << p << "_NAME " << c_string(n.name) << "\n" << p << "_RANK " << n.type.shape.size()
        << "\n" << p << "_SHAPE {";
      for (size_t d = 0; d < n.type.shape.size(); ++d) h << (d ? ", " : "") << n.type.shape[d];
      h << "}\n" << p << "_ELEMENTS " << n.type.elements() << "\n";
    }
  };
  shapes("input", ins);
  shapes("output", outs);
  h << "\ntypedef struct " << N << "_model " << N << "_model;\n\n"
    << "/* Loads the weights (from weights_path, or the library's own when they were embedded and\n"
    << " * weights_path is NULL) and allocates the activations. NULL on failure: see "
    << N << "_last_error(). */\n"
    << N << "_model* " << N << "_create(const char* weights_path);\n\n"
    << "/* Runs the network: inputs[i] holds input i's elements, outputs[i] receives output i's.\n"
    << " * 0 on success, else a non-zero code and " << N << "_error(model) says what failed. */\n"
    << "int " << N << "_run(" << N
    << "_model* model, const float* const* inputs, float* const* outputs);\n\n"
    << "const char* " << N << "_error(const " << N << "_model* model);\n"
    << "/* Why the last " << N << "_create on this thread failed. */\n"
    << "const char* " << N << "_last_error(void);\n"
    << "void " << N << "_destroy(" << N << "_model* model);\n\n"
    << "#ifdef __cplusplus\n}\n#endif\n\n#endif\n";
  return h.str();
}

std::string executor(const std::string& N, const ir::Graph& g, const MemoryPlan& plan,
                     const std::vector<Call>& calls, const std::vector<std::string>& functions,
                     int64_t weight_floats, bool embedded, int64_t slices,
                     const std::vector<int64_t>& data_offset) {
  std::ostringstream c;
  c << "/* The executor of " << N << " (generated by cnnc export): the memory plan and the kernel\n"
    << " * calls of one pass of " << g.batch() / slices << " image(s); a batch of " << g.batch()
    << " runs " << slices << " pass(es). */\n"
    << "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\n"
    << "#include \"HalideRuntime.h\"\n#include \"" << N << ".h\"\n\n";
  for (const auto& f : functions) c << "int " << f << "_argv(void** args);\n";
  c << "\nstruct " << N << "_model {\n  float* arena_base;\n  float* arena;\n  const float* weights;\n"
    << "  float* owned_weights;\n  char error[512];\n};\n\n"
    << "static const size_t kArenaFloats = " << plan.arena_bytes / 4 << ";\n"
    << "static const size_t kWeightFloats = " << weight_floats << ";\n"
    << "static _Thread_local char last_error[512];\n"
    << "static _Thread_local char kernel_error[512];\n\n";
  if (embedded) c << "extern const unsigned char " << N << "_embedded_weights[];\n\n";
  c << "static void capture_error(void* user_context, const char* msg) {\n"
    << "  (void)user_context;\n  snprintf(kernel_error, sizeof kernel_error, \"%s\", msg);\n}\n\n"
    << "const char* " << N << "_last_error(void) { return last_error; }\n"
    << "const char* " << N << "_error(const " << N
    << "_model* m) { return m ? m->error : last_error; }\n\n";
  // create
  c << N << "_model* " << N << "_create(const char* weights_path) {\n"
    << "  halide_set_error_handler(capture_error);\n"
    << "  " << N << "_model* m = (" << N << "_model*)calloc(1, sizeof *m);\n"
    << "  if (!m) { snprintf(last_error, sizeof last_error, \"out of memory\"); return NULL; }\n"
    << "  m->arena_base = (float*)calloc(kArenaFloats + 16, sizeof(float));\n"
    << "  if (!m->arena_base) { free(m); snprintf(last_error, sizeof last_error, \"out of memory (\"\n"
    << "      \"%zu bytes of activations)\", kArenaFloats * sizeof(float)); return NULL; }\n"
    << "  /* 64-byte aligned activations, as the kernels were planned */\n"
    << "  m->arena = (float*)(((uintptr_t)m->arena_base + 63) & ~(uintptr_t)63);\n";
  c << "  if (weights_path) {\n"
    << "    FILE* f = fopen(weights_path, \"rb\");\n"
    << "    char magic[8];\n    uint64_t count = 0;\n"
    << "    if (!f) { snprintf(last_error, sizeof last_error, \"%s: cannot open the weights\", "
       "weights_path); goto fail; }\n"
    << "    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, \"CNNCWB01\", 8) != 0 ||\n"
    << "        fread(&count, sizeof count, 1, f) != 1 || count != kWeightFloats) {\n"
    << "      fclose(f);\n"
    << "      snprintf(last_error, sizeof last_error, \"%s: not the weights of " << N
    << " (expected a cnnc export weight file of %zu floats)\", weights_path, kWeightFloats);\n"
    << "      goto fail;\n    }\n"
    << "    m->owned_weights = (float*)malloc(kWeightFloats * sizeof(float) + 1);\n"
    << "    if (!m->owned_weights || fread(m->owned_weights, sizeof(float), kWeightFloats, f) != "
       "kWeightFloats) {\n"
    << "      fclose(f);\n"
    << "      snprintf(last_error, sizeof last_error, \"%s: truncated weights (expected %zu "
       "floats)\", weights_path, kWeightFloats);\n"
    << "      goto fail;\n    }\n"
    << "    fclose(f);\n    m->weights = m->owned_weights;\n  } else {\n";
  if (embedded)
    c << "    m->weights = (const float*)(" << N << "_embedded_weights + 16);\n";
  else
    c << "    snprintf(last_error, sizeof last_error, \"" << N
      << " was exported without embedded weights: give the path of " << N
      << ".weights\");\n    goto fail;\n";
  c << "  }\n  return m;\nfail:\n  free(m->owned_weights);\n  free(m->arena_base);\n  free(m);\n"
    << "  return NULL;\n}\n\n";
  c << "void " << N << "_destroy(" << N
    << "_model* m) {\n  if (!m) return;\n  free(m->owned_weights);\n  free(m->arena_base);\n"
    << "  free(m);\n}\n\n";
  // one pass
  c << "static int run_pass(" << N << "_model* m) {\n"
    << "  float* A = m->arena;\n  const float* W = m->weights;\n";
  for (size_t k = 0; k < calls.size(); ++k) {
    const Call& call = calls[k];
    c << "  { /* " << call.layer << " */\n";
    for (size_t a = 0; a < call.args.size(); ++a) {
      const auto& arg = call.args[a];
      c << "    halide_dimension_t d" << a << "[" << arg.dims.size() << "] = {";
      int64_t stride = 1;
      for (size_t d = 0; d < arg.dims.size(); ++d) {
        c << (d ? ", " : "") << "{0, " << arg.dims[d] << ", " << stride << ", 0}";
        stride *= arg.dims[d];
      }
      c << "};\n    halide_buffer_t b" << a << " = {0, NULL, (uint8_t*)("
        << (arg.weight ? "W" : "A") << " + " << arg.offset
        << "), 0, {halide_type_float, 32, 1}, " << arg.dims.size() << ", d" << a << ", NULL};\n";
    }
    c << "    void* args[] = {";
    for (size_t a = 0; a < call.args.size(); ++a) c << (a ? ", " : "") << "&b" << a;
    c << "};\n    if (" << call.function << "_argv(args) != 0) {\n"
      << "      snprintf(m->error, sizeof m->error, \"layer '%s': %s\", " << c_string(call.layer)
      << ", kernel_error);\n      return 1;\n    }\n  }\n";
  }
  c << "  return 0;\n}\n\n";
  // run: inputs in, passes, outputs out
  const auto ins = g.inputs(), outs = g.outputs();
  c << "int " << N << "_run(" << N
    << "_model* m, const float* const* inputs, float* const* outputs) {\n"
    << "  if (!m || !inputs || !outputs) return 2;\n  m->error[0] = 0;\n"
    << "  for (int s = 0; s < " << slices << "; ++s) {\n";
  for (size_t i = 0; i < ins.size(); ++i) {
    const int64_t n = g.node(ins[i]).type.elements() / slices;
    c << "    memcpy(m->arena + " << data_offset[ins[i]] << ", inputs[" << i << "] + (size_t)s * "
      << n << ", " << n << " * sizeof(float));\n";
  }
  c << "    if (run_pass(m) != 0) return 1;\n";
  for (size_t o = 0; o < outs.size(); ++o) {
    const int64_t n = g.node(outs[o]).type.elements() / slices;
    c << "    memcpy(outputs[" << o << "] + (size_t)s * " << n << ", m->arena + "
      << data_offset[outs[o]] << ", " << n << " * sizeof(float));\n";
  }
  c << "  }\n  return 0;\n}\n";
  return c.str();
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw Error(p.string() + ": cannot write: " + std::strerror(errno));
}

}  // namespace

ExportResult export_library(ir::Graph g, const ExportOptions& opts) {
  const ir::Target facts = describe_target(opts.target);
  if (facts.family == ir::Target::Gpu)
    throw Error("cnnc export --target " + opts.target +
                ": exporting GPU kernels is not built yet; export for a CPU target (host, "
                "arm-64-linux, or a CPU target string)");
  const Target target = halide_target(facts);
  const std::string N = c_identifier(opts.name);
  const Toolchain tools = toolchain(target);
  if (!run_program({tools.cc, "--version"}, true))
    throw Error("cnnc export --target " + opts.target + ": the C compiler '" + tools.cc +
                "' is not usable (Debian package " + tools.package + ")");
  for (const auto& n : g.nodes())
    for (const auto& p : n.params)
      if (static_cast<int64_t>(p.value.data.size()) != p.value.elements())
        throw Error(g.where(n) + ": weights '" + p.role + "' are not set");

  const fs::path dir = opts.dir, work = dir / ".build";
  std::error_code ec;
  fs::create_directories(work, ec);
  if (ec) throw Error(opts.dir + ": cannot create the folder: " + ec.message());

  const int64_t batch = g.batch();
  const int64_t micro = choose_micro_batch(g, opts.micro_batch, facts.family);
  g.set_batch(micro);
  const MemoryPlan plan = plan_memory(g);
  // Where each node's value is, in floats from the arena's start (a view: its source's).
  std::vector<int64_t> data_offset(g.size(), 0);
  for (int i = 0; i < g.size(); ++i)
    data_offset[i] = plan.offset[i] >= 0 ? plan.offset[i] / 4 : data_offset[g.node(i).inputs[0]];

  ExportResult r;
  std::vector<Call> calls;
  std::vector<std::string> functions, objects;
  std::map<std::string, std::string> by_key;  // workload + schedule -> function
  std::vector<float> weights;
  const Target object_target = target.with_feature(Target::NoRuntime);
  for (int id = 0; id < g.size(); ++id) {
    const ir::Node& n = g.node(id);
    if (!ir::has_kernel(n.op)) continue;
    Lowered l = lower(g, n, target, facts);
    const std::string key = ir::workload_key(g, n) + " schedule=" + ir::to_text(n.schedule);
    auto [it, fresh] = by_key.emplace(key, N + "_k" + std::to_string(by_key.size()));
    if (fresh) {
      const std::string object = (work / (it->second + ".o")).string();
      std::vector<Argument> args(l.args.begin(), l.args.end());
      try {
        Pipeline(l.out).compile_to_object(object, args, it->second, object_target);
      } catch (const Halide::Error& e) {
        throw Error(g.where(n) + ": Halide could not compile this layer: " + e.what());
      }
      functions.push_back(it->second);
      objects.push_back(object);
    }
    Call call{n.name, it->second, {}};
    size_t a = 0;
    for (ir::NodeId in : n.inputs) call.args.push_back({false, data_offset[in], l.arg_dims[a++]});
    for (const auto& p : n.params) {
      const bool packs = p.role == "kernel" && l.weight_block > 0;
      std::vector<float> packed =
          packs ? std::vector<float>(packed_kernel_floats(p.value, l.winograd_outputs))
                : p.value.data;
      if (packs)
        pack_kernel(p.value, l.weight_block, l.winograd_outputs, packed.data(), 0,
                    p.value.shape.back() / l.weight_block);
      call.args.push_back({true, static_cast<int64_t>(weights.size()), l.arg_dims[a++]});
      weights.insert(weights.end(), packed.begin(), packed.end());
    }
    call.args.push_back({false, data_offset[id], l.out_dims});
    calls.push_back(std::move(call));
  }
  r.kernels = functions.size();
  const std::string runtime = (work / "halide_runtime.o").string();
  compile_standalone_runtime(runtime, target);
  objects.push_back(runtime);

  // The weights: a magic, their count, then the floats (the executor checks both).
  std::string blob(kWeightsMagic, 8);
  const uint64_t count = weights.size();
  blob.append(reinterpret_cast<const char*>(&count), sizeof count);
  blob.append(reinterpret_cast<const char*>(weights.data()), weights.size() * sizeof(float));
  r.weight_bytes = static_cast<int64_t>(blob.size());

  // The executor and the header; Halide's runtime header beside the executor only.
  g.set_batch(batch);
  write_file(dir / (N + ".h"), header(N, g));
  write_file(work / (N + ".c"),
             executor(N, g, plan, calls, functions, static_cast<int64_t>(weights.size()),
                      opts.embed_weights, batch / micro, data_offset));
  fs::copy_file(fs::path(halide_library_folder()) / ".." / "include" / "HalideRuntime.h",
                work / "HalideRuntime.h",
                fs::copy_options::overwrite_existing, ec);
  if (ec) throw Error("cannot copy HalideRuntime.h into " + work.string() + ": " + ec.message());
  const std::string executor_object = (work / (N + ".o")).string();
  if (!run_program({tools.cc, "-O2", "-std=c11", "-c", "-I", work.string(), "-I", dir.string(),
                    (work / (N + ".c")).string(), "-o", executor_object}))
    throw InternalError("the generated executor " + (work / (N + ".c")).string() +
                        " did not compile with " + tools.cc);
  objects.push_back(executor_object);
  if (opts.embed_weights) {
    // The blob as a read-only symbol, through the assembler (any target's toolchain has one).
    write_file(work / "weights.bin", blob);
    write_file(work / "weights.S",
               ".section .rodata\n.balign 64\n.global " + N + "_embedded_weights\n" + N +
                   "_embedded_weights:\n.incbin \"" + (work / "weights.bin").string() +
                   "\"\n.section .note.GNU-stack,\"\",%progbits\n");
    const std::string o = (work / "weights.o").string();
    if (!run_program({tools.cc, "-c", (work / "weights.S").string(), "-o", o}))
      throw InternalError("the weights did not assemble with " + tools.cc);
    objects.push_back(o);
  } else {
    write_file(dir / (N + ".weights"), blob);
    r.files.push_back(N + ".weights");
  }
  const std::string library = (dir / ("lib" + N + ".a")).string();
  fs::remove(library, ec);
  std::vector<std::string> ar = {tools.ar, "rcs", library};
  ar.insert(ar.end(), objects.begin(), objects.end());
  if (!run_program(ar)) throw Error("cannot archive " + library + " with " + tools.ar);
  r.library_bytes = static_cast<int64_t>(fs::file_size(library));
  r.files.insert(r.files.begin(), {"lib" + N + ".a", N + ".h"});
  r.compiler = tools.cc;
  r.name = N;
  fs::remove_all(work, ec);
  return r;
}

}  // namespace cnnc::codegen
