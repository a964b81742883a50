// Exclusive writer lock of a run directory (see run_lock.h).
#include "train/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>

#include "core/error.h"

namespace fs = std::filesystem;

namespace knot::train {
namespace {

// The holder record: "pid 1234 (knot train)". Read back for the error of a refused writer.
std::string read_holder(int fd) {
  char buf[256];
  const ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return "";
  std::string s(buf, static_cast<size_t>(n));
  while (!s.empty() && (s.back() == '\n' || s.back() == '\0')) s.pop_back();
  return s;
}

}  // namespace

RunLock::RunLock(const std::string& run_dir, const std::string& what) : run_dir_(run_dir) {
  std::error_code ec;
  if (!fs::exists(run_dir, ec)) {
    fs::create_directories(run_dir, ec);
    KNOT_CHECK(!ec, "{}: cannot create the run directory '{}': {}", what, run_dir, ec.message());
    created_dir_ = true;
  }
  KNOT_CHECK(fs::is_directory(run_dir), "{}: the run directory '{}' is not a directory", what, run_dir);
  const std::string path = (fs::path(run_dir) / ".lock").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  KNOT_CHECK(fd_ >= 0, "{}: cannot open the lock file '{}': {}", what, path, std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string holder = read_holder(fd_);
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK)
      KNOT_FAIL("{}: the run directory '{}' is in use by another process ({}); wait for it to finish or stop it, "
                "then try again (the lock is '{}')",
                what, run_dir, holder.empty() ? std::string("its pid is not recorded yet") : holder, path);
    KNOT_FAIL("{}: cannot lock '{}': {}", what, path, std::strerror(err));
  }
  const std::string record = fmt::format("pid {} (knot {})\n", static_cast<long>(::getpid()), what);
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, record.data(), record.size(), 0) != static_cast<ssize_t>(record.size())) {
    // The lock holds without the record; only a refused writer's message is poorer for it.
  }
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  if (created_dir_) {
    // A directory this lock created that holds nothing but the lock file: the run wrote nothing
    // (refused before its first file), so leave no empty run directory behind.
    std::error_code ec;
    bool only_lock = true;
    for (const auto& e : fs::directory_iterator(run_dir_, ec))
      if (e.path().filename() != ".lock") only_lock = false;
    if (!ec && only_lock) {
      fs::remove(fs::path(run_dir_) / ".lock", ec);
      fs::remove(run_dir_, ec);
    }
  }
  ::close(fd_);  // drops the flock
}

}  // namespace knot::train
