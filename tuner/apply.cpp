#include "tuner/apply.h"

#include <filesystem>
#include <sstream>

#include "codegen/compile.h"
#include "ir/text.h"
#include "tuner/database.h"
#include "tuner/fingerprint.h"

namespace cnnc::tuner {

std::vector<Explanation> apply_records(ir::Graph& g, const std::string& db_path,
                                       const ir::Target& target, int threads, int64_t micro_batch) {
  std::vector<Explanation> out;
  const bool have_db = std::filesystem::exists(db_path);
  std::optional<Database> db;
  if (have_db) db.emplace(db_path);
  const std::string fp = fingerprint(target);
  const int64_t batch = g.batch();
  g.set_batch(micro_batch);  // records are keyed at the batch the kernels run
  for (ir::Node& n : g.nodes()) {
    if (!ir::has_kernel(n.op)) continue;
    Explanation e{n.name, ir::to_text(n.schedule), ""};
    if (!db) {
      e.why = "the tiling pass's (no tuning database at " + db_path + ")";
      out.push_back(e);
      continue;
    }
    const std::string key = ir::workload_key(g, n);
    if (auto best = db->best(fp, key, target.name, threads)) {
      ir::Node probe = n;
      std::string why;
      if (ir::parse_schedule(best->schedule, probe.schedule, why) &&
          codegen::schedule_problem(g, probe, target).empty()) {
        n.schedule = probe.schedule;
        std::ostringstream os;
        os.precision(3);
        os << "tuned: the database's best for this hardware, " << best->ms << " ms against "
           << best->heuristic_ms << " ms with the tiling pass's schedule (measured " << best->date
           << ")";
        if (best->schedule == e.schedule)
          os.str(
              "the tiling pass's, confirmed by the database (tuning found nothing faster on this "
              "hardware)");
        e.schedule = best->schedule;
        e.why = os.str();
      } else {
        e.why = "the tiling pass's (the database's record " + best->schedule +
                " does not apply: " + why + ")";
      }
    } else {
      const auto others = db->other_fingerprints(fp, key, target.name);
      e.why = others.empty() ? "the tiling pass's (not tuned on this hardware)"
                             : "the tiling pass's (records from other hardware, not applied: " +
                                   others.front() + (others.size() > 1 ? ", ..." : "") + ")";
    }
    out.push_back(e);
  }
  g.set_batch(batch);
  return out;
}

}  // namespace cnnc::tuner
