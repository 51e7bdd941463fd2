#include "frontend/keras/isolated.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <new>

#include "ir/error.h"

// The fuzz build (tools/fuzz.sh) runs under AddressSanitizer and libFuzzer.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/common_interface_defs.h>
#define CNNC_UNDER_ASAN 1
#endif
#endif

namespace cnnc::frontend::keras {

namespace {

std::atomic<double> g_read_timeout_s{120};  // set_read_timeout
ChildHooks g_hooks;                         // set_child_hooks

// The child's answer: a status byte (1: contents, 0: an error message), then length-prefixed
// fields. Only this file writes and reads it, between a parent and its own child.
void put_u64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }
void put_string(std::string& out, const std::string& s) {
  put_u64(out, s.size());
  out += s;
}

std::string serialize(const Hdf5Contents& c) {
  std::string out(1, '\1');
  put_string(out, c.config);
  put_u64(out, c.weights.size());
  for (const auto& [layer, tensors] : c.weights) {
    put_string(out, layer);
    put_u64(out, tensors.size());
    for (const ir::Tensor& t : tensors) {
      put_u64(out, t.shape.size());
      for (int64_t d : t.shape) put_u64(out, static_cast<uint64_t>(d));
      put_u64(out, t.data.size());
      out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * sizeof(float));
    }
  }
  return out;
}

// The child's answer is checked as it is read: a child whose memory HDF5 damaged (a hostile
// file) may exit normally and answer anything.
struct Reader {
  const std::string& in;
  const std::string& label;
  size_t at = 1;
  void expect(bool ok) const {
    if (!ok)
      throw Error(label +
                  ": the HDF5 reader's answer is damaged (HDF5 itself was, by a damaged or "
                  "hostile file?); nothing was loaded");
  }
  uint64_t u64() {
    expect(at + 8 <= in.size());
    uint64_t v;
    std::memcpy(&v, in.data() + at, 8);
    at += 8;
    return v;
  }
  std::string bytes(uint64_t n) {
    expect(n <= in.size() - at);
    std::string s = in.substr(at, n);
    at += n;
    return s;
  }
};

Hdf5Contents deserialize(const std::string& in, const std::string& label) {
  Reader r{in, label};
  Hdf5Contents c;
  c.config = r.bytes(r.u64());
  for (uint64_t layers = r.u64(); layers > 0; --layers) {
    auto& tensors = c.weights[r.bytes(r.u64())];
    for (uint64_t n = r.u64(); n > 0; --n) {
      ir::Tensor t;
      for (uint64_t rank = r.u64(); rank > 0; --rank)
        t.shape.push_back(static_cast<int64_t>(r.u64()));
      const uint64_t elements = r.u64();
      r.expect(elements <= (in.size() - r.at) / sizeof(float));  // before multiplying
      const std::string data = r.bytes(elements * sizeof(float));
      t.data.resize(elements);
      if (elements > 0) std::memcpy(t.data.data(), data.data(), data.size());  // data() may be null
      tensors.push_back(std::move(t));
    }
  }
  r.expect(r.at == in.size());
  return c;
}

// The address space this process has mapped now, from /proc/self/statm (0 when unreadable).
uint64_t mapped_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long long pages = 0;
  const int got = std::fscanf(f, "%llu", &pages);
  std::fclose(f);
  return got == 1 ? pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

// A hostile file can declare a string or dataset of terabytes; with the address space capped,
// HDF5's allocation fails (an error) instead of the child paging in (or copying) gigabytes.
void limit_memory(uint64_t budget) {
  const uint64_t now = mapped_bytes();
  if (now == 0) return;
  rlimit r{};
  if (getrlimit(RLIMIT_AS, &r) != 0) return;
  const rlim_t want = static_cast<rlim_t>(now + budget);
  if (r.rlim_max != RLIM_INFINITY && want > r.rlim_max) return;  // a tighter limit holds already
  r.rlim_cur = want;
  setrlimit(RLIMIT_AS, &r);
}

std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

std::string format_size(uint64_t bytes) {
  return bytes < (uint64_t{1} << 20) ? std::to_string((bytes + 1023) >> 10) + " KiB"
                                     : std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB";
}

void write_all(int fd, const std::string& s) {
  for (size_t done = 0; done < s.size();) {
    const ssize_t n = write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

}  // namespace

void set_read_timeout(double seconds) { g_read_timeout_s = seconds; }
void set_child_hooks(ChildHooks hooks) { g_hooks = hooks; }

Hdf5Contents read_isolated(const std::string& label, uint64_t input_bytes,
                           const std::function<Hdf5Contents()>& read, double timeout_s) {
  if (timeout_s <= 0) timeout_s = g_read_timeout_s;
  int fds[2];
  if (pipe(fds) != 0) throw Error(label + ": cannot make a pipe: " + std::strerror(errno));
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    throw Error(label + ": cannot start the HDF5 reader: " + std::strerror(errno));
  }
  if (pid == 0) {  // the child: read, answer, exit without running the parent's destructors
    close(fds[0]);
    // A crash here is the child's to die of: the parent's crash handlers (a test framework's,
    // a crash reporter's) must not run in it and report the parent as crashed.
    for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) signal(sig, SIG_DFL);
#ifdef CNNC_UNDER_ASAN
    // Likewise a sanitizer's report of HDF5's own faults: libFuzzer's death callback would save
    // the input as a crash of the fuzzed process, which goes on and reports an error.
    __sanitizer_set_death_callback(nullptr);
#endif
    const uint64_t budget = kReadMemoryBase + kReadMemoryPerByte * input_bytes;
    limit_memory(budget);
    std::string answer;
    try {
      answer = serialize(read());
    } catch (const std::bad_alloc&) {
      answer = std::string(1, '\0') + label + ": reading it needed more than the " +
               format_size(budget) + " of memory allowed for a file of " +
               format_size(input_bytes) + " (a damaged or hostile file?); nothing was loaded";
    } catch (const std::exception& e) {
      answer = std::string(1, '\0') + e.what();
    }
    if (g_hooks.child_done) g_hooks.child_done();
    write_all(fds[1], answer);
    _exit(0);
  }
  close(fds[1]);
  std::string answer;
  char buf[1 << 16];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  bool timed_out = false;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) continue;
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (g_hooks.parent_after) g_hooks.parent_after();
  if (timed_out)
    throw Error(label + ": the HDF5 library did not finish reading it in " +
                format_seconds(timeout_s) +
                " (a damaged or hostile file?); the reader was stopped");
  if (WIFSIGNALED(status))
    throw Error(label + ": the HDF5 library crashed reading it (signal " +
                std::to_string(WTERMSIG(status)) + ": " + strsignal(WTERMSIG(status)) +
                "): a damaged or hostile file; nothing was loaded");
  if (answer.empty())
    throw Error(label + ": the HDF5 reader ended without an answer (exit status " +
                std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")");
  if (answer[0] == '\0') throw Error(answer.substr(1));
  return deserialize(answer, label);
}

}  // namespace cnnc::frontend::keras
