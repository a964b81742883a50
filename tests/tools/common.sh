# Shared by the tool tests that check error messages (onnx_cli.sh, torch_cli.sh); sourced after
# they set $knot and $work. fail MESSAGE: print and exit 1, naming the calling script.
# expect_error WHAT PATTERN ARGS...: `knot ARGS...` must fail and print PATTERN.
fail() { echo "$(basename "$0" .sh): $*" >&2; exit 1; }
expect_error() {
  local what=$1 pattern=$2
  shift 2
  if "$knot" "$@" > "$work/err.log" 2>&1; then fail "$what: knot $1 $2 succeeded"; fi
  grep -q -- "$pattern" "$work/err.log" || { cat "$work/err.log"; fail "$what: the error does not say '$pattern'"; }
}
