# Two "nodes" on one machine, for the multi-node tests (sourced; docs/distributed.md, "Losing a
# node"). Each node is a torchrun agent in a session of its own, with its own --checkpoint_dir;
# the c10d rendezvous store is hosted by a process of the test's own (as production jobs host it on
# an endpoint the agents join as clients: --rdzv_conf=is_host=0), so it outlives any node. A node
# is killed by its session (the agent and its workers), never by a name pattern.
#
# Uses: C2 (the c2 binary), Q1Q4, tmp (a folder of the test's own). T: c2's arguments, 2 epochs of
# 4 batches of 4 synthetic images per rank, a checkpoint after every batch.
T=(--dataset=synthetic --synthetic_train=64 --synthetic_test=16 --batch_size=4 --threads=1
   --progress=off --dist_timeout=120 --max_batches_per_epoch=4 --epochs=2 --checkpoint_every=1)

nodes_failures=0
fail() { echo "FAIL: $*"; nodes_failures=$((nodes_failures + 1)); }
pass() { echo "ok: $*"; }
digest() { grep -ho 'Final state digest.*' "$@" 2>/dev/null | head -1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# The python of torchrun (its store must speak the LibTorch's protocol that c2 links).
torchrun_python() { head -1 "$(command -v torchrun)" | sed 's/^#! *//'; }

# Whether torchrun's PyTorch and c2's LibTorch talk (the same major.minor); else one line, and the
# caller skips what needs torchrun. $1: q1_q4 (it reports the linked LibTorch).
torchrun_matches() {
  local q1q4="$1" runner built
  if ! command -v torchrun >/dev/null; then
    echo "torchrun not found (Debian's python3-torch; ./bazelw installs it)"
    return 1
  fi
  runner=$("$(torchrun_python)" -c 'import torch; print(".".join(torch.__version__.split(".")[:2]))' 2>/dev/null)
  "$q1q4" --results_dir="$tmp/version" >/dev/null 2>&1 &&
    built=$(python3 -c 'import json, sys; v = json.load(open(sys.argv[1]))["environment"]["libtorch_version"]; print(".".join(v.split(".")[:2]))' "$tmp/version/q1_q4.json")
  if [[ -n "$runner" && -n "$built" && "$runner" != "$built" ]]; then
    echo "torchrun runs PyTorch $runner and this build links LibTorch $built, whose stores do not talk (run it with torchrun of $built)"
    return 1
  fi
  return 0
}

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The processes of session $1 (from /proc: field 6 of stat is the session id).
in_session() {
  local sid="$1" stat line rest
  for stat in /proc/[0-9]*/stat; do
    { read -r line <"$stat"; } 2>/dev/null || continue
    rest=${line##*) }
    # shellcheck disable=SC2086
    set -- $rest
    [[ "$4" == "$sid" ]] && { stat=${stat#/proc/}; echo "${stat%/stat}"; }
  done
}
kill_session() {
  local pids
  pids=$(in_session "$1")
  [[ -n "$pids" ]] && kill -KILL $pids 2>/dev/null
  return 0
}

sessions=()
store_pid=""
cleanup_nodes() {
  local s
  for s in "${sessions[@]}"; do kill_session "$s"; done
  [[ -n "$store_pid" ]] && kill "$store_pid" 2>/dev/null
  return 0
}
trap cleanup_nodes EXIT

# The rendezvous store, on a free port: sets rdzv_port.
start_store() {
  rdzv_port=$(free_port)
  "$(torchrun_python)" -c '
import datetime, sys, time
import torch.distributed as dist
store = dist.TCPStore("127.0.0.1", int(sys.argv[1]), is_master=True,
                      timeout=datetime.timedelta(seconds=300), wait_for_workers=False)
print("ready", flush=True)
time.sleep(3600)' "$rdzv_port" >"$tmp/store.out" 2>&1 &
  store_pid=$!
  local _
  for _ in $(seq 200); do grep -q ready "$tmp/store.out" 2>/dev/null && return 0; sleep 0.05; done
  echo "the rendezvous store did not start: $(cat "$tmp/store.out")"
  return 1
}

# start_node NAME CHECKPOINT_DIR JOB [torchrun flags...]: an agent for 2 nodes (or what the flags
# say) with one worker, c2 "${T[@]}" --checkpoint_dir=DIR; output in $tmp/NAME.{out,err}, its
# session id in node_sid[NAME].
declare -A node_sid node_pid
start_node() {
  local name="$1" dir="$2" job="$3"
  shift 3
  # Debian's torchrun on Python 3.11 needs --redirects 2 --tee 2 (BUILD_NOTES.md).
  setsid timeout 600 torchrun --no_python --nnodes=2 --nproc_per_node=1 --rdzv_backend=c10d \
    --rdzv_endpoint="127.0.0.1:$rdzv_port" --rdzv_id="$job" --rdzv_conf=is_host=0 \
    --monitor_interval=1 --redirects 2 --tee 2 --log_dir="$tmp/logs_$name" "$@" \
    "$C2" "${T[@]}" --checkpoint_dir="$dir" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  node_pid[$name]=$!
  node_sid[$name]=$!  # setsid runs it in place (a background job leads no group): its pid is the session's
  sessions+=("$!")
}

# worker_rank NAME: "PID RANK" of the node's c2 worker ("" while it has none).
worker_rank() {
  local p
  for p in $(in_session "${node_sid[$1]}"); do
    [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == c2 ]] || continue
    echo "$p $({ tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null | sed -n 's/^RANK=//p')"
    return 0
  done
}

# wait_for SECONDS PATTERN FILES...: until a line matches (0) or the time is up (1).
wait_for() {
  local seconds="$1" pattern="$2" _
  shift 2
  for _ in $(seq $((seconds * 20))); do
    grep -qE -- "$pattern" "$@" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# The nodes' two workers have started training epoch 2: returns once rank 0 printed epoch 1's
# summary and both workers are found; sets rank0_node and other_node.
wait_for_epoch_2() {
  local a="$1" b="$2" _ ra rb
  # (minutes under a sanitizer)
  wait_for 600 '^Epoch 1 Summary' "$tmp/$a.out" "$tmp/$b.out" || return 1
  for _ in $(seq 100); do
    ra=$(worker_rank "$a")
    rb=$(worker_rank "$b")
    [[ -n "$ra" && -n "$rb" ]] && break
    sleep 0.05
  done
  [[ -n "$ra" && -n "$rb" ]] || return 1
  if [[ "${ra#* }" == 0 ]]; then rank0_node=$a other_node=$b; else rank0_node=$b other_node=$a; fi
}

# Waits into epoch 2: until rank 0's node has replaced its checkpoint twice since epoch 1's
# summary (a save after every batch, the epoch's end included), so a kill lands after epoch 2's
# first or second batch of four, on a fast machine or a slow one. 1 if that never happens.
wait_into_epoch_2() {
  local f="$tmp/ck_$rank0_node/c2.ckpt" last now changes=0 _
  last=$(stat -c %i "$f" 2>/dev/null)
  for _ in $(seq 12000); do
    kill -0 "${node_pid[$rank0_node]}" 2>/dev/null || return 1  # the job ended first
    now=$(stat -c %i "$f" 2>/dev/null)
    if [[ -n "$now" && "$now" != "$last" ]]; then
      changes=$((changes + 1))
      last=$now
      ((changes >= 2)) && return 0
    fi
    sleep 0.05
  done
  return 1
}

# The uninterrupted run: two ranks side by side without torchrun (RANK/WORLD_SIZE by hand).
reference_digest() {
  local p
  p=$(free_port)
  WORLD_SIZE=2 RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$p timeout 150 "$C2" "${T[@]}" \
    --checkpoint_dir="$tmp/ref_r1" >"$tmp/ref.r1.out" 2>"$tmp/ref.r1.err" &
  local pid1=$!
  WORLD_SIZE=2 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$p timeout 150 "$C2" "${T[@]}" \
    --checkpoint_dir="$tmp/ref_r0" >"$tmp/ref.r0.out" 2>"$tmp/ref.r0.err"
  wait $pid1
  digest "$tmp/ref.r0.out"
}

# The test's start: skipped in one line (exit 0) where torchrun's PyTorch cannot talk to this
# build's LibTorch; else the rendezvous store is started.
nodes_begin() {
  local why
  if ! why=$(torchrun_matches "$Q1Q4"); then
    echo "skipped: $why"
    exit 0
  fi
  start_store || exit 1
}
