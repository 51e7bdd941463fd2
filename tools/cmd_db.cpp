// cnnc db list|show|export|import|prune|stats: the tuning database, looked at and shared.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "codegen/compile.h"
#include "ir/atomic_file.h"
#include "ir/error.h"
#include "tools/commands.h"
#include "tools/prepare.h"
#include "tuner/database.h"
#include "tuner/fingerprint.h"

namespace cnnc::tools {

namespace {

struct DbFlags {
  std::string action, arg, db;
};

int db_command(const DbFlags& o) {
  const std::string path = o.db.empty() ? tuner::default_database_path() : o.db;
  tuner::Database db(path);
  const auto all = db.all();
  if (o.action == "list" || o.action == "show") {
    // list: the best record per key; show: every record whose workload contains ARG.
    std::map<std::string, tuner::Record> best;
    for (const auto& r : all) {
      if (o.action == "show" && r.workload.find(o.arg) == std::string::npos) continue;
      if (o.action == "show") {
        std::printf(
            "%s %-7s %-36s %9.4f ms (heuristic %.4f) %s %s%s\n  workload: %s\n  hardware: %s, "
            "target %s, %d threads\n",
            r.date.c_str(), r.ok ? "ok" : "FAILED", r.schedule.c_str(), r.ms, r.heuristic_ms,
            r.source.c_str(), r.ok ? "" : "— ", r.error.c_str(), r.workload.c_str(),
            r.fingerprint.c_str(), r.target.c_str(), r.threads);
        continue;
      }
      const std::string key =
          r.fingerprint + "|" + r.workload + "|" + r.target + "|" + std::to_string(r.threads);
      if (r.ok && (!best.count(key) || r.ms < best[key].ms)) best[key] = r;
    }
    for (const auto& [key, r] : best)
      std::printf("%9.4f ms (heuristic %9.4f, %5.2fx)  %-34s %s\n", r.ms, r.heuristic_ms,
                  r.ms > 0 ? r.heuristic_ms / r.ms : 0.0, r.schedule.c_str(), r.workload.c_str());
    return 0;
  }
  if (o.action == "stats") {
    std::map<std::string, int> per_hw;
    int failed = 0;
    for (const auto& r : all)
      per_hw[r.fingerprint + " (" + r.target + ", " + std::to_string(r.threads) + " threads)"]++,
          failed += !r.ok;
    std::printf("%s: %zu records, %d failed candidates; integrity: %s\n", path.c_str(), all.size(),
                failed, db.integrity().c_str());
    const std::string here = tuner::fingerprint(codegen::describe_target("host"));
    for (const auto& [hw, n] : per_hw)
      std::printf("  %6d  %s%s\n", n, hw.c_str(),
                  hw.rfind(here, 0) == 0 ? "  <- this machine" : "");
    return 0;
  }
  if (o.action == "export") {
    const std::string lines = db.export_lines();
    if (o.arg.empty() || o.arg == "-")
      std::fwrite(lines.data(), 1, lines.size(), stdout);
    else
      ir::write_file_atomically(o.arg, lines);
    return 0;
  }
  if (o.action == "import") {
    if (o.arg.empty()) throw Error("db import: give the JSON-lines file to import");
    std::ifstream f(o.arg, std::ios::binary);
    if (!f) throw Error(o.arg + ": cannot read");
    std::stringstream ss;
    ss << f.rdbuf();
    const int64_t n = db.import_lines(ss.str(), o.arg);
    std::printf(
        "imported %lld records into %s (records of other hardware are kept, and applied only "
        "on a machine of the same fingerprint)\n",
        static_cast<long long>(n), path.c_str());
    return 0;
  }
  if (o.action == "prune") {
    std::printf(
        "removed %lld records (kept the best per workload, hardware, target, threads and "
        "version)\n",
        static_cast<long long>(db.prune()));
    return 0;
  }
  throw InternalError("db: unhandled action " + o.action);
}

}  // namespace

Action add_db(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "db", "The tuning database: list, show WORKLOAD, export [FILE], import FILE, prune, stats");
  auto o = std::make_shared<DbFlags>();
  sub->add_option("ACTION", o->action, "list, show, export, import, prune or stats")
      ->required()
      ->check(CLI::IsMember({"list", "show", "export", "import", "prune", "stats"}));
  sub->add_option("ARG", o->arg,
                  "show: text in the workload key; export/import: the JSON-lines file");
  sub->add_option(
      "--db", o->db,
      "the tuning database (default: $CNNC_TUNING_DB, else tuning.db in the cache folder)");
  return [o] { return db_command(*o); };
}

}  // namespace cnnc::tools
