#include "tuner/database.h"

#include <sqlite3.h>

#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ir/error.h"
#include "ir/schedule.h"

namespace cnnc::tuner {

namespace {

constexpr int kSchemaVersion = 1;
constexpr const char* kColumns =
    "fingerprint, workload, target, threads, cnnc_version, halide_version, schedule, source, ok, "
    "ms, noise, heuristic_ms, error, date";

// Runs one statement with bound text arguments and calls `row` for each result row.
template <class Row>
void exec(sqlite3* db, const std::string& path, const std::string& sql,
          const std::vector<std::string>& args, Row row) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
    throw Error(path + ": " + sqlite3_errmsg(db) + " (is it a cnnc tuning database?)");
  for (size_t i = 0; i < args.size(); ++i)
    sqlite3_bind_text(st, static_cast<int>(i + 1), args[i].c_str(), -1, SQLITE_TRANSIENT);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) row(st);
  const std::string msg = sqlite3_errmsg(db);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) throw Error(path + ": " + msg);
}
void exec(sqlite3* db, const std::string& path, const std::string& sql) {
  exec(db, path, sql, {}, [](sqlite3_stmt*) {});
}

std::string text(sqlite3_stmt* st, int col) {
  const unsigned char* t = sqlite3_column_text(st, col);
  return t ? reinterpret_cast<const char*>(t) : "";
}

Record read_row(sqlite3_stmt* st) {
  Record r;
  r.fingerprint = text(st, 0);
  r.workload = text(st, 1);
  r.target = text(st, 2);
  r.threads = sqlite3_column_int(st, 3);
  r.cnnc_version = text(st, 4);
  r.halide_version = text(st, 5);
  r.schedule = text(st, 6);
  r.source = text(st, 7);
  r.ok = sqlite3_column_int(st, 8) != 0;
  r.ms = sqlite3_column_double(st, 9);
  r.noise = sqlite3_column_double(st, 10);
  r.heuristic_ms = sqlite3_column_double(st, 11);
  r.error = text(st, 12);
  r.date = text(st, 13);
  return r;
}

std::string fmt(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

// Why a record (from an import, or about to be stored) is not one, or "".
std::string invalid(const Record& r) {
  auto bad_text = [](const std::string& s, size_t max) {
    if (s.size() > max) return true;
    for (unsigned char c : s)
      if (c < 32) return true;
    return false;
  };
  if (r.fingerprint.empty() || bad_text(r.fingerprint, 1000))
    return "fingerprint: empty or not text";
  if (r.workload.empty() || bad_text(r.workload, 20000)) return "workload: empty or not text";
  if (r.target.empty() || bad_text(r.target, 200)) return "target: empty or not text";
  if (r.threads < 0 || r.threads > 4096) return "threads: not in 0..4096";
  ir::Schedule s;
  std::string why;
  if (!ir::parse_schedule(r.schedule, s, why)) return "schedule '" + r.schedule + "': " + why;
  if (!std::isfinite(r.ms) || r.ms < 0 || r.ms > 1e9) return "ms: not a time";
  if (!std::isfinite(r.noise) || r.noise < 0) return "noise: not a ratio";
  if (!std::isfinite(r.heuristic_ms) || r.heuristic_ms < 0) return "heuristic_ms: not a time";
  for (const auto* s2 : {&r.cnnc_version, &r.halide_version, &r.source, &r.error, &r.date})
    if (bad_text(*s2, 2000)) return "a text field holds control characters or is too long";
  return "";
}

}  // namespace

std::string now_utc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string default_database_path() {
  if (const char* p = std::getenv("CNNC_TUNING_DB"); p && *p) return p;
  if (const char* d = std::getenv("CNNC_CACHE_DIR"); d && *d && std::string(d) != "off")
    return std::string(d) + "/tuning.db";
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return std::string(x) + "/cnnc/tuning.db";
  if (const char* h = std::getenv("HOME"); h && *h)
    return std::string(h) + "/.cache/cnnc/tuning.db";
  return "cnnc-tuning.db";
}

Database::Database(const std::string& path) : path_(path) {
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error(path + ": cannot open the tuning database: " + why);
  }
  sqlite3_busy_timeout(db_, 10000);  // another tune or a worker may hold the write lock
  try {
    // Durable on power loss too: WAL, and every commit synced.
    exec(db_, path_, "PRAGMA journal_mode=WAL");
    exec(db_, path_, "PRAGMA synchronous=FULL");
    int version = -1;
    exec(db_, path_, "PRAGMA user_version", {},
         [&](sqlite3_stmt* st) { version = sqlite3_column_int(st, 0); });
    bool has_table = false;
    int tables = 0;
    exec(db_, path_, "SELECT name FROM sqlite_master WHERE type='table'", {},
         [&](sqlite3_stmt* st) {
           ++tables;
           has_table = has_table || text(st, 0) == "records";
         });
    if (version == 0 && tables == 0) {  // a new, empty file: ours to lay out
      exec(db_, path_,
           "CREATE TABLE records(id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL, workload TEXT "
           "NOT NULL, target TEXT NOT NULL, threads INTEGER NOT NULL, cnnc_version TEXT NOT NULL, "
           "halide_version TEXT NOT NULL, schedule TEXT NOT NULL, source TEXT NOT NULL, ok INTEGER "
           "NOT NULL, ms REAL NOT NULL, noise REAL NOT NULL, heuristic_ms REAL NOT NULL, error "
           "TEXT NOT NULL, date TEXT NOT NULL)");
      exec(db_, path_,
           "CREATE INDEX records_key ON records(fingerprint, workload, target, threads)");
      exec(db_, path_, "PRAGMA user_version=" + std::to_string(kSchemaVersion));
    } else if (version != kSchemaVersion || !has_table) {
      throw Error(path_ + ": not a cnnc tuning database of schema " +
                  std::to_string(kSchemaVersion) + " (user_version " + std::to_string(version) +
                  (has_table ? "" : ", no records table") +
                  "); give another --db, or move this file away");
    }
    // A file with the right version but another layout: the columns must all be there.
    exec(db_, path_, std::string("SELECT ") + kColumns + " FROM records LIMIT 0");
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

Database::~Database() { sqlite3_close(db_); }

void Database::add(const Record& r) {
  if (const std::string why = invalid(r); !why.empty())
    throw InternalError("tuning record not stored: " + why);
  exec(db_, path_,
       std::string("INSERT INTO records(") + kColumns + ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
       {r.fingerprint, r.workload, r.target, std::to_string(r.threads), r.cnnc_version,
        r.halide_version, r.schedule, r.source, r.ok ? "1" : "0", fmt(r.ms), fmt(r.noise),
        fmt(r.heuristic_ms), r.error, r.date},
       [](sqlite3_stmt*) {});
}

std::vector<Record> Database::query(const std::string& where,
                                    const std::vector<std::string>& args) const {
  std::vector<Record> out;
  exec(db_, path_, std::string("SELECT ") + kColumns + " FROM records " + where, args,
       [&](sqlite3_stmt* st) { out.push_back(read_row(st)); });
  return out;
}

std::optional<Record> Database::best(const std::string& fingerprint, const std::string& workload,
                                     const std::string& target, int threads) const {
  auto r = query(
      "WHERE fingerprint=? AND workload=? AND target=? AND threads=? AND ok=1 AND cnnc_version=? "
      "AND halide_version=? ORDER BY source = 'verified' DESC, ms LIMIT 1",
      {fingerprint, workload, target, std::to_string(threads), cnnc_version(), halide_version()});
  if (r.empty()) return std::nullopt;
  return r.front();
}

std::vector<Record> Database::records(const std::string& fingerprint, const std::string& workload,
                                      const std::string& target, int threads) const {
  return query("WHERE fingerprint=? AND workload=? AND target=? AND threads=? ORDER BY id",
               {fingerprint, workload, target, std::to_string(threads)});
}

std::vector<std::string> Database::other_fingerprints(const std::string& fingerprint,
                                                      const std::string& workload,
                                                      const std::string& target) const {
  std::vector<std::string> out;
  exec(db_, path_,
       "SELECT DISTINCT fingerprint FROM records WHERE fingerprint<>? AND workload=? AND target=? "
       "AND ok=1",
       {fingerprint, workload, target}, [&](sqlite3_stmt* st) { out.push_back(text(st, 0)); });
  return out;
}

std::string Database::integrity() const {
  std::string out;
  exec(db_, path_, "PRAGMA integrity_check", {},
       [&](sqlite3_stmt* st) { out += (out.empty() ? "" : "; ") + text(st, 0); });
  return out;
}

std::vector<Record> Database::all() const { return query("ORDER BY id", {}); }

int64_t Database::prune() {
  const int64_t before = static_cast<int64_t>(all().size());
  exec(db_, path_,
       "DELETE FROM records WHERE id NOT IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER "
       "(PARTITION BY fingerprint, workload, target, threads, cnnc_version, halide_version "
       "ORDER BY ok DESC, source = 'verified' DESC, ms) AS rank FROM records) WHERE rank = 1)");
  exec(db_, path_, "PRAGMA wal_checkpoint(TRUNCATE)");
  return before - static_cast<int64_t>(all().size());
}

std::string Database::export_lines() const {
  std::string out;
  for (const Record& r : all()) {
    nlohmann::json j = {{"fingerprint", r.fingerprint},
                        {"workload", r.workload},
                        {"target", r.target},
                        {"threads", r.threads},
                        {"cnnc_version", r.cnnc_version},
                        {"halide_version", r.halide_version},
                        {"schedule", r.schedule},
                        {"source", r.source},
                        {"ok", r.ok},
                        {"ms", r.ms},
                        {"noise", r.noise},
                        {"heuristic_ms", r.heuristic_ms},
                        {"error", r.error},
                        {"date", r.date}};
    out += j.dump() + "\n";
  }
  return out;
}

int64_t Database::import_lines(const std::string& text_in, const std::string& source_name) {
  std::vector<Record> records;
  std::istringstream in(text_in);
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    const std::string here = source_name + ":" + std::to_string(line_no) + ": ";
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) throw Error(here + "not a JSON object (one tuning record per line)");
    Record r;
    auto str = [&](const char* k, std::string& v) {
      if (!j.contains(k) || !j[k].is_string()) throw Error(here + "'" + k + "' must be a string");
      v = j[k].get<std::string>();
    };
    auto num = [&](const char* k, double& v) {
      if (!j.contains(k) || !j[k].is_number()) throw Error(here + "'" + k + "' must be a number");
      v = j[k].get<double>();
    };
    str("fingerprint", r.fingerprint);
    str("workload", r.workload);
    str("target", r.target);
    if (!j.contains("threads") || !j["threads"].is_number_integer())
      throw Error(here + "'threads' must be an integer");
    const int64_t threads = j["threads"].get<int64_t>();
    if (threads < 0 || threads > 4096) throw Error(here + "'threads' must be in 0..4096");
    r.threads = static_cast<int>(threads);
    str("cnnc_version", r.cnnc_version);
    str("halide_version", r.halide_version);
    str("schedule", r.schedule);
    str("source", r.source);
    if (!j.contains("ok") || !j["ok"].is_boolean())
      throw Error(here + "'ok' must be true or false");
    r.ok = j["ok"].get<bool>();
    num("ms", r.ms);
    num("noise", r.noise);
    num("heuristic_ms", r.heuristic_ms);
    str("error", r.error);
    str("date", r.date);
    if (const std::string why = invalid(r); !why.empty()) throw Error(here + why);
    r.source = "import";
    records.push_back(std::move(r));
  }
  // All or nothing: one transaction for the whole file.
  exec(db_, path_, "BEGIN IMMEDIATE");
  try {
    for (const Record& r : records) add(r);
    exec(db_, path_, "COMMIT");
  } catch (...) {
    exec(db_, path_, "ROLLBACK");
    throw;
  }
  return static_cast<int64_t>(records.size());
}

}  // namespace cnnc::tuner
