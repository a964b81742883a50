// One writer per run directory. `knot train`, `knot train --resume` and `knot finetune` hold an
// exclusive lock on RUN/.lock (flock) for as long as they may write into RUN; a second writer is
// refused at once with an error naming the holder's pid. Readers (eval, translate, plot) take no
// lock: every file a writer replaces is replaced atomically (temp file, fsync, rename).
//
// The lock is tied to the open file description, so the kernel drops it when the holder exits,
// however it exits (kill -9 included): a stale .lock file never blocks a later run. The file
// itself stays (removing it would race with a process that has just opened it), except in a run
// directory this lock created and nothing else wrote into: a refused fresh run leaves no trace.
#pragma once

#include <string>

namespace knot::train {

class RunLock {
 public:
  // Creates run_dir when missing and takes the lock; `what` names the writer in the holder record
  // and in the error ("train", "finetune"). Throws knot::Error when another process holds it.
  RunLock(const std::string& run_dir, const std::string& what);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  const std::string& run_dir() const { return run_dir_; }

 private:
  std::string run_dir_;
  int fd_ = -1;
  bool created_dir_ = false;
};

}  // namespace knot::train
