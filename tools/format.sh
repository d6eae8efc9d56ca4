#!/usr/bin/env bash
# Formats trainlab's C++ sources with .clang-format (clang-format 14, Debian's clang-format).
#   tools/format.sh           rewrite the files in place
#   tools/format.sh --check   list the files that differ, exit 1 if any does
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "format.sh: clang-format not found (apt-get install clang-format)" >&2; exit 1; }
# (Vendored code keeps its authors' format: third_party/nvtx3.)
mapfile -t files < <(git ls-files '*.h' '*.cc' ':!third_party/nvtx3')
if [[ "${1:-}" == "--check" ]]; then
  bad=0
  for f in "${files[@]}"; do
    if ! clang-format --style=file "$f" | cmp -s - "$f"; then echo "$f"; bad=1; fi
  done
  exit $bad
fi
clang-format -i --style=file "${files[@]}"
