#include "train/fit.h"

#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "ir/atomic_file.h"
#include "ir/error.h"

namespace cnnc::train {

namespace {

using Clock = std::chrono::steady_clock;
constexpr char kMagic[8] = {'C', 'N', 'N', 'C', 'C', 'K', 'P', '1'};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The model's input (batch x H x W x C) and classes, checked against the data.
struct Fit {
  ir::Shape input;
  int64_t classes = 0, per_image = 0;  // per_image: the data's
  double scale = 1;
  int pad = 0;
};

Fit check_data(TrainingModel& m, const runtime::Dataset& d, double scale, int pad) {
  const ir::Graph& g = m.program().graph();
  const passes::TrainingGraph& t = m.training_graph();
  Fit f;
  f.input = m.input_shape();
  const ir::Shape& s = d.images.shape;
  f.pad = pad;
  if (f.input.size() != 4 || s.size() != 4 || f.input[1] != s[1] + 2 * pad ||
      f.input[2] != s[2] + 2 * pad || f.input[3] != s[3])
    throw Error(g.name + ": the network takes inputs of " + ir::shape_to_string(f.input, false) +
                ", the data (" + d.source + ") holds images of " + ir::shape_to_string(s, false) +
                (pad ? " (" + std::to_string(pad) + " pixels of padding around each)" : "") +
                "; accepted: a network whose input is the data's H x W x C (--pad P adds P "
                "pixels on each side)");
  f.classes = g.node(g.find(t.prediction)).type.shape.back();
  if (t.loss != passes::Loss::SparseCategoricalCrossEntropy)
    throw Error(g.name +
                ": training on labelled images takes the sparse categorical "
                "cross-entropy loss (labels are class indices)");
  for (size_t i = 0; i < d.labels.size(); ++i)
    if (d.labels[i] < 0 || d.labels[i] >= f.classes)
      throw Error(d.source + ": label " + std::to_string(i) + " is " + std::to_string(d.labels[i]) +
                  ", but the network has " + std::to_string(f.classes) + " classes (0 to " +
                  std::to_string(f.classes - 1) + ")");
  f.per_image = s[1] * s[2] * s[3];
  f.scale = scale > 0 ? scale : d.from_uint8 ? 1.0 / 255 : 1.0;
  return f;
}

// Samples order[first .. first + count) into x and labels (rows past count stay zero).
void gather(const runtime::Dataset& d, const Fit& f, const std::vector<int64_t>& order,
            int64_t first, int64_t count, ir::Tensor& x, ir::Tensor& labels) {
  const auto scale = static_cast<float>(f.scale);
  // Zeros only where no image lands: the padding, and the rows past a partial last batch.
  if (f.pad > 0 || count < labels.elements()) {
    std::fill(x.data.begin(), x.data.end(), 0.f);
    std::fill(labels.data.begin(), labels.data.end(), 0.f);
  }
  const int64_t h = d.images.shape[1], w = d.images.shape[2], c = d.images.shape[3];
  const int64_t out_w = w + 2 * f.pad, out_image = (h + 2 * f.pad) * out_w * c;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t k = order[static_cast<size_t>(first + i)];
    const float* src = d.images.data.data() + k * f.per_image;
    float* dst = x.data.data() + i * out_image + (f.pad * out_w + f.pad) * c;
    for (int64_t y = 0; y < h; ++y, src += w * c, dst += out_w * c)
      for (int64_t p = 0; p < w * c; ++p) dst[p] = src[p] * scale;
    labels.data[static_cast<size_t>(i)] = static_cast<float>(d.labels[static_cast<size_t>(k)]);
  }
}

EpochLog evaluate_samples(TrainingModel& m, const runtime::Dataset& d, const Fit& f,
                          const std::vector<int64_t>& order) {
  const int64_t batch = m.batch(), n = static_cast<int64_t>(order.size());
  ir::Tensor x(f.input), labels({batch, 1});
  double loss = 0;
  int64_t correct = 0;
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t count = std::min(batch, n - start);
    gather(d, f, order, start, count, x, labels);
    const StepResult r = m.evaluate(x, labels, count);
    loss += r.loss * static_cast<double>(count);
    correct += r.correct;
  }
  EpochLog e;
  e.loss = n ? loss / static_cast<double>(n) : 0;
  e.accuracy = n ? static_cast<double>(correct) / static_cast<double>(n) : 0;
  return e;
}

// ---- the log and the checkpoint ----

std::string csv_of(const std::vector<EpochLog>& logs) {
  std::ostringstream s;
  s << "epoch,loss,accuracy,val_loss,val_accuracy,test_loss,test_accuracy,lr,seconds,"
       "images_per_second\n";
  for (const auto& e : logs) {
    char line[256];
    std::snprintf(line, sizeof line, "%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6g,%.3f,%.1f\n", e.epoch,
                  e.loss, e.accuracy, e.val_loss, e.val_accuracy, e.test_loss, e.test_accuracy,
                  e.lr, e.seconds, e.images_per_second);
    s << line;
  }
  return s.str();
}

nlohmann::json to_json(const EpochLog& e) {
  return {{"epoch", e.epoch},
          {"loss", e.loss},
          {"accuracy", e.accuracy},
          {"val_loss", e.val_loss},
          {"val_accuracy", e.val_accuracy},
          {"test_loss", e.test_loss},
          {"test_accuracy", e.test_accuracy},
          {"lr", e.lr},
          {"seconds", e.seconds},
          {"images_per_second", e.images_per_second}};
}
EpochLog from_json(const nlohmann::json& j) {
  EpochLog e;
  e.epoch = j.at("epoch");
  e.loss = j.at("loss"), e.accuracy = j.at("accuracy");
  e.val_loss = j.at("val_loss"), e.val_accuracy = j.at("val_accuracy");
  e.test_loss = j.value("test_loss", -1.0), e.test_accuracy = j.value("test_accuracy", -1.0);
  e.lr = j.at("lr"), e.seconds = j.at("seconds"), e.images_per_second = j.at("images_per_second");
  return e;
}

// "CNNCCKP1", a u64 header length, the JSON header, the float32 tensors in its order, and the
// CRC-32 of everything before it. The tensors are the model's slots: trained weights, moving
// statistics, optimiser state.
void save_checkpoint(const std::string& path, TrainingModel& m, const std::vector<EpochLog>& logs) {
  nlohmann::json h;
  h["format"] = "cnnc training checkpoint 1";
  h["model"] = m.program().graph().name;
  h["epoch"] = logs.empty() ? 0 : logs.back().epoch;
  h["iterations"] = m.optimizer().iterations();
  std::ostringstream rng;
  rng << m.rng();
  h["dropout_rng"] = rng.str();
  for (const auto& e : logs) h["history"].push_back(to_json(e));
  std::string data;
  for (const auto& slot : m.slots()) {
    h["tensors"].push_back({{"name", slot.name}, {"count", slot.size}});
    data.append(reinterpret_cast<const char*>(slot.data), slot.size * sizeof(float));
  }
  const std::string header = h.dump();
  const uint64_t len = header.size();
  std::string bytes(kMagic, sizeof kMagic);
  bytes.append(reinterpret_cast<const char*>(&len), sizeof len);
  bytes += header + data;
  const uint32_t crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
  bytes.append(reinterpret_cast<const char*>(&crc), sizeof crc);
  ir::write_file_atomically(path, bytes);
}

std::vector<EpochLog> load_checkpoint(const std::string& path, TrainingModel& m) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": no checkpoint to resume from (train without --resume first)");
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto bad = [&](const std::string& why) -> Error {
    return Error(path + ": not a usable checkpoint: " + why);
  };
  if (bytes.size() < sizeof kMagic + 12 || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    throw bad("it does not start with CNNCCKP1");
  uint32_t crc = 0;
  std::memcpy(&crc, bytes.data() + bytes.size() - 4, 4);
  if (crc !=
      crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size() - 4)))
    throw bad("its checksum does not match (truncated or damaged)");
  uint64_t len = 0;
  std::memcpy(&len, bytes.data() + 8, 8);
  if (len > bytes.size() - 20) throw bad("its header length is past its end");
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(bytes.substr(16, len));
    if (h.at("model") != m.program().graph().name)
      throw bad("it is of the model '" + h.at("model").get<std::string>() + "', not '" +
                m.program().graph().name + "'");
    const auto slots = m.slots();
    const auto& listed = h.at("tensors");
    if (listed.size() != slots.size()) throw bad("it holds other tensors than this model's");
    // Every tensor checked before any is copied: a checkpoint of another model changes nothing.
    size_t at = 16 + len;
    std::vector<size_t> offsets;
    for (size_t k = 0; k < slots.size(); ++k) {
      const size_t count = listed[k].at("count");
      if (listed[k].at("name") != slots[k].name || count != slots[k].size ||
          at + count * sizeof(float) > bytes.size() - 4)
        throw bad("tensor " + slots[k].name + " differs from this model's");
      offsets.push_back(at);
      at += count * sizeof(float);
    }
    for (size_t k = 0; k < slots.size(); ++k)
      std::memcpy(slots[k].data, bytes.data() + offsets[k], slots[k].size * sizeof(float));
    m.state_changed();
    m.optimizer().set_iterations(h.at("iterations"));
    std::istringstream rng(h.at("dropout_rng").get<std::string>());
    rng >> m.rng();
    std::vector<EpochLog> logs;
    for (const auto& e : h.value("history", nlohmann::json::array())) logs.push_back(from_json(e));
    return logs;
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("its header: ") + e.what());
  }
}

void progress_line(int epoch, int epochs, int64_t step, int64_t steps, double loss, double acc,
                   double ips, double eta) {
  const int width = 24, done = static_cast<int>(width * step / std::max<int64_t>(steps, 1));
  std::fprintf(stderr, "\repoch %d/%d [%s%s] %lld/%lld loss %.4f acc %.4f %.0f img/s ETA %.0fs  ",
               epoch, epochs, std::string(static_cast<size_t>(done), '=').c_str(),
               std::string(static_cast<size_t>(width - done), ' ').c_str(),
               static_cast<long long>(step), static_cast<long long>(steps), loss, acc, ips, eta);
  std::fflush(stderr);
}

}  // namespace

std::string checkpoint_path(const std::string& dir) { return dir + "/checkpoint.cnnck"; }

EpochLog evaluate_dataset(TrainingModel& m, const runtime::Dataset& data, double scale, int pad) {
  const Fit f = check_data(m, data, scale, pad);
  std::vector<int64_t> all(data.labels.size());
  std::iota(all.begin(), all.end(), 0);
  return evaluate_samples(m, data, f, all);
}

std::vector<EpochLog> fit(TrainingModel& m, const runtime::Dataset& data, const FitOptions& o) {
  const Fit f = check_data(m, data, o.scale, o.pad);
  const auto total = static_cast<int64_t>(data.labels.size());
  const int64_t n = o.limit > 0 ? std::min(o.limit, total) : total;
  const auto held_out =
      static_cast<int64_t>(std::floor(static_cast<double>(n) * o.validation_split));
  std::vector<int64_t> train(static_cast<size_t>(n - held_out)), val(static_cast<size_t>(held_out));
  std::iota(train.begin(), train.end(), 0);
  std::iota(val.begin(), val.end(), n - held_out);
  const int64_t batch = m.batch(), steps = static_cast<int64_t>(train.size()) / batch;
  if (steps == 0)
    throw Error(data.source + ": " + std::to_string(train.size()) +
                " training samples, fewer than one batch of " + std::to_string(batch));

  std::vector<EpochLog> logs;
  if (!o.checkpoint_dir.empty()) std::filesystem::create_directories(o.checkpoint_dir);
  if (o.resume) {
    if (o.checkpoint_dir.empty()) throw Error("--resume needs --checkpoint DIR");
    logs = load_checkpoint(checkpoint_path(o.checkpoint_dir), m);
    std::fprintf(stderr, "resumed from %s after epoch %d\n",
                 checkpoint_path(o.checkpoint_dir).c_str(), logs.empty() ? 0 : logs.back().epoch);
  }
  std::fprintf(stderr,
               "training %s on %s: %zu samples, %zu held out, %lld steps of %lld per epoch, %d "
               "epoch(s)\n",
               m.program().graph().name.c_str(), data.source.c_str(), train.size(), val.size(),
               static_cast<long long>(steps), static_cast<long long>(batch), o.epochs);
  const bool live = o.progress && ::isatty(STDERR_FILENO);
  ir::Tensor x(f.input), labels({batch, 1});
  for (int epoch = static_cast<int>(logs.size()) + 1; epoch <= o.epochs; ++epoch) {
    // The order of an epoch depends on the seed and the epoch only, so a resumed run sees the
    // batches an uninterrupted one would.
    std::mt19937_64 rng(o.seed * 1000003 + static_cast<uint64_t>(epoch));
    std::iota(train.begin(), train.end(), 0);
    std::shuffle(train.begin(), train.end(), rng);
    const auto t0 = Clock::now();
    double loss = 0, lr = 0;
    int64_t correct = 0;
    auto shown_at = Clock::now();
    for (int64_t s = 0; s < steps; ++s) {
      gather(data, f, train, s * batch, batch, x, labels);
      lr = m.optimizer().learning_rate(m.optimizer().iterations(), steps, steps * o.epochs);
      const StepResult r = m.step(x, labels, lr);
      loss += r.loss, correct += r.correct;
      if (live && (s + 1 == steps || seconds_since(shown_at) > 0.25)) {
        const double t = seconds_since(t0), ips = static_cast<double>((s + 1) * batch) / t;
        progress_line(epoch, o.epochs, s + 1, steps, loss / double(s + 1),
                      double(correct) / double((s + 1) * batch), ips,
                      t / double(s + 1) * double(steps - s - 1));
        shown_at = Clock::now();
      }
    }
    EpochLog e;
    e.epoch = epoch;
    e.seconds = seconds_since(t0);
    e.loss = loss / static_cast<double>(steps);
    e.accuracy = static_cast<double>(correct) / static_cast<double>(steps * batch);
    e.images_per_second = static_cast<double>(steps * batch) / e.seconds;
    e.lr = lr;
    if (!val.empty()) {
      const EpochLog v = evaluate_samples(m, data, f, val);
      e.val_loss = v.loss, e.val_accuracy = v.accuracy;
    }
    if (o.test) {
      const EpochLog t = evaluate_dataset(m, *o.test, o.scale, o.pad);
      e.test_loss = t.loss, e.test_accuracy = t.accuracy;
    }
    logs.push_back(e);
    if (live) std::fprintf(stderr, "\n");
    std::fprintf(stderr, "epoch %d/%d: loss %.4f, accuracy %.4f", epoch, o.epochs, e.loss,
                 e.accuracy);
    if (e.val_loss >= 0)
      std::fprintf(stderr, ", val_loss %.4f, val_accuracy %.4f", e.val_loss, e.val_accuracy);
    if (e.test_loss >= 0)
      std::fprintf(stderr, ", test_loss %.4f, test_accuracy %.4f", e.test_loss, e.test_accuracy);
    std::fprintf(stderr, " (%.1f s, %.0f images/s)\n", e.seconds, e.images_per_second);
    if (!o.csv.empty()) ir::write_file_atomically(o.csv, csv_of(logs));
    if (o.after_epoch) o.after_epoch(logs);
    if (!o.checkpoint_dir.empty()) save_checkpoint(checkpoint_path(o.checkpoint_dir), m, logs);
  }
  return logs;
}

}  // namespace cnnc::train
