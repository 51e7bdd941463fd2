#pragma once
// The tuning database: every measured schedule, in SQLite (WAL, one transaction per record, so a
// killed tune loses nothing it committed and the next run resumes from it). A record is keyed by
// the hardware fingerprint, the workload key, the target and the thread count, and names the
// cnnc and Halide versions it was measured with. Untrusted input: a file that is not such a
// database, or an import line that is not a record, is a clear error.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace cnnc::tuner {

struct Record {
  std::string fingerprint;  // tuner::fingerprint(target)
  std::string workload;     // ir::workload_key at the kernel's micro-batch
  std::string target;       // ir::Target::name
  int threads = 0;
  std::string cnnc_version, halide_version;
  std::string schedule;     // ir::to_text
  std::string source;       // heuristic, random, mutation, import
  bool ok = true;           // false: the candidate failed (error says why)
  double ms = 0;            // median time of the kernel alone
  double noise = 0;         // (p90 - p10) / median of the repeats
  double heuristic_ms = 0;  // the tiling pass's schedule, measured in the same tune
  std::string error;
  std::string date;  // ISO 8601, UTC
};

class Database {
 public:
  // Opens (creating the file and its folder if needed) and checks the schema. Throws
  // cnnc::Error naming the file when it is not a cnnc tuning database.
  explicit Database(const std::string& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Appends one record in its own transaction (durable when this returns).
  void add(const Record& r);
  // The record to apply for this key, from this cnnc and Halide version: the fastest verdict
  // of a recheck (source "verified": the best against the heuristic, re-measured alternately)
  // if the key has one, else the fastest successful measurement.
  std::optional<Record> best(const std::string& fingerprint, const std::string& workload,
                             const std::string& target, int threads) const;
  // Every record for the key (ok or not), oldest first: what a resumed tune has measured.
  std::vector<Record> records(const std::string& fingerprint, const std::string& workload,
                              const std::string& target, int threads) const;
  // Fingerprints other than `fingerprint` that have records for the workload and target.
  std::vector<std::string> other_fingerprints(const std::string& fingerprint,
                                              const std::string& workload,
                                              const std::string& target) const;
  std::vector<Record> all() const;
  // Keeps only the best record per key and the failures' count; returns records removed.
  int64_t prune();
  // Records as JSON lines, and back. import_lines checks every field and returns the count;
  // a malformed line is an error naming its line number (nothing of the file is added then).
  std::string export_lines() const;
  int64_t import_lines(const std::string& text, const std::string& source_name);
  // SQLite's own check of the file ("ok", or what is damaged).
  std::string integrity() const;
  const std::string& path() const { return path_; }

 private:
  std::vector<Record> query(const std::string& where, const std::vector<std::string>& args) const;
  sqlite3* db_ = nullptr;
  std::string path_;
};

// The default database: $CNNC_TUNING_DB, else $CNNC_CACHE_DIR/tuning.db, else
// $XDG_CACHE_HOME/cnnc/tuning.db, else ~/.cache/cnnc/tuning.db.
std::string default_database_path();

// The versions a record is measured with.
std::string cnnc_version();
std::string halide_version();
// Now, as ISO 8601 UTC.
std::string now_utc();

}  // namespace cnnc::tuner
