#!/usr/bin/env bash
# Builds and runs tests/outer_workspace, a separate Bazel workspace that depends on
# @trainlab//core:trainer, a model, an optimizer plugin and the loader through
# trainlab_dependencies(), as a user's larger workspace would. Its own output base: the first run
# compiles the trainlab targets it uses (a few minutes on 2 cores), later runs are incremental.
#
#   tests/outer_workspace/run.sh [extra bazel test arguments]
set -euo pipefail
cd "$(dirname "$0")"
# bazelw installs the same Debian packages trainlab's build needs (and honours
# TRAINLAB_NO_INSTALL=1).
../../bazelw --version >/dev/null
exec bazel test //:train_two_steps "$@"
