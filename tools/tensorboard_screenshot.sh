#!/usr/bin/env bash
# Takes a PNG of TensorBoard's dashboard on a folder of event files (the README's and
# docs/tensorboard.md's picture): the pinned TensorBoard (@tensorboard) on Debian's python3, served
# on 127.0.0.1 at a port it picks, photographed by headless Chromium (Debian's `chromium`
# package, not installed by ./bazelw: apt-get install chromium).
#
#   tools/tensorboard_screenshot.sh /tmp/tb docs/tensorboard_c6.png [#scalars&_smoothingWeight=0]
set -euo pipefail
logdir="$1" out="$2" view="${3:-#scalars}"
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || { echo "tensorboard_screenshot: no chromium (apt-get install chromium)" >&2; exit 1; }
tb="$(./bazelw info output_base 2>/dev/null)/external/tensorboard"
[[ -f "$tb/tensorboard/version.py" ]] || ./bazelw build @tensorboard//:tensorboard >/dev/null
log="$(mktemp)"
PYTHONPATH="$tb" timeout 300 /usr/bin/python3 -m tensorboard.main --logdir "$logdir" \
  --host 127.0.0.1 --port 0 --load_fast=false >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT
url=""
for _ in $(seq 300); do
  url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$log" | head -1) && [[ -n "$url" ]] && break
  sleep 0.1
done
[[ -n "$url" ]] || { echo "tensorboard_screenshot: tensorboard did not start: $(cat "$log")" >&2; exit 1; }
sleep 3  # its first load of the folder
chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1600,1000 \
  --virtual-time-budget=20000 --screenshot="$(realpath -m "$out")" "$url/$view" 2>/dev/null
echo "tensorboard_screenshot: $out from $url/$view"
