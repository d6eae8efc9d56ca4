#!/usr/bin/env bash
# The bad-input corpus: every case runs a real binary and must give exactly one line on stderr
# that names the input and the problem, exit code 1, no crash and no hang (60 s limit each).
set -uo pipefail
C2="$1" C3="$2" C6="$3" C8="$4" Q1Q4="$5" ALL="$6" REPORT="$7" MKDATA="$8" C7="$9" C4="${10}" PROFILE="${11}" TTA="${12}"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
failures=0 cases=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
TINY=(--dataset=synthetic --synthetic_train=48 --synthetic_test=16 --batch_size=8 --max_batches_per_epoch=1
      --epochs=1 --threads=1)

# bad WANT BINARY ARGS...: WANT must appear in the single stderr line.
bad() {
  local want="$1" bin="$2"; shift 2
  cases=$((cases + 1))
  timeout -k 5 60 "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$? name; name=$(basename "$bin")
  if [[ $rc == 124 || $rc == 137 ]]; then fail "$name $*: hung (killed after 60 s)"; return; fi
  if [[ $rc != 1 ]]; then fail "$name $*: exit $rc, want 1: $(head -3 "$tmp/err")"; return; fi
  local lines; lines=$(wc -l <"$tmp/err")
  if [[ $lines != 1 ]]; then fail "$name $*: $lines stderr lines, want 1:"; head -5 "$tmp/err"; return; fi
  if grep -qF -- "$want" "$tmp/err"; then echo "ok: $(cat "$tmp/err")"; else fail "$name $*: '$(cat "$tmp/err")' lacks '$want'"; fi
}

# --- CIFAR-10 binary files ------------------------------------------------------------------------
"$MKDATA" --out="$tmp/cifar" --train=40 --test=8 >/dev/null || fail "make_synthetic_cifar10"
mk() { rm -rf "$tmp/$1"; cp -r "$tmp/cifar" "$tmp/$1"; }
mk truncated; truncate -s 5000 "$tmp/truncated/data_batch_2.bin"
mk empty; : >"$tmp/empty/data_batch_1.bin"
mk label; printf '\x0c' | dd of="$tmp/label/data_batch_1.bin" bs=1 seek=3073 conv=notrunc status=none
mk dirfile; rm "$tmp/dirfile/data_batch_3.bin"; mkdir "$tmp/dirfile/data_batch_3.bin"
mk notest; rm "$tmp/notest/test_batch.bin"
mk extra; head -c 100 /dev/urandom >>"$tmp/extra/test_batch.bin"
C=(--dataset=cifar10 --threads=1)
bad "/nonexistent/cifar: CIFAR-10 directory not found" "$C2" "${C[@]}" --data_dir=/nonexistent/cifar
bad "data_batch_2.bin: size 5000 is not a whole number of 3073-byte" "$C2" "${C[@]}" --data_dir="$tmp/truncated"
bad "data_batch_1.bin" "$C2" "${C[@]}" --data_dir="$tmp/empty"
bad "data_batch_1.bin: record 1 has label 12" "$C2" "${C[@]}" --data_dir="$tmp/label"
bad "data_batch_3.bin" "$C2" "${C[@]}" --data_dir="$tmp/dirfile"
bad "test_batch.bin" "$C2" "${C[@]}" --data_dir="$tmp/notest"
bad "test_batch.bin: size" "$C2" "${C[@]}" --data_dir="$tmp/extra"
bad "--dataset=cifar10 needs --data_dir" "$C2" --dataset=cifar10

# --- Fashion-MNIST IDX files (.gz) -----------------------------------------------------------------
be32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
idx_images() {  # idx_images FILE MAGIC COUNT ROWS COLS
  { be32 "$2"; be32 "$3"; be32 "$4"; be32 "$5"; head -c $(($3 * $4 * $5)) /dev/zero; } | gzip >"$1"
}
idx_labels() {  # idx_labels FILE MAGIC COUNT LABEL
  { be32 "$2"; be32 "$3"; for ((i = 0; i < $3; i++)); do printf "\\x$(printf %02x "$4")"; done; } | gzip >"$1"
}
fm() {  # fm DIR: a valid tiny Fashion-MNIST folder
  mkdir -p "$1"
  idx_images "$1/train-images-idx3-ubyte.gz" 2051 16 28 28; idx_labels "$1/train-labels-idx1-ubyte.gz" 2049 16 3
  idx_images "$1/t10k-images-idx3-ubyte.gz" 2051 8 28 28; idx_labels "$1/t10k-labels-idx1-ubyte.gz" 2049 8 3
}
F=(--dataset=fashion_mnist --threads=1 --batch_size=8 --epochs=1)
fm "$tmp/fm_ok"
"$C2" "${F[@]}" --data_dir="$tmp/fm_ok" >/dev/null 2>"$tmp/err" || fail "the valid tiny Fashion-MNIST was refused: $(cat "$tmp/err")"
fm "$tmp/fm_magic"; idx_images "$tmp/fm_magic/train-images-idx3-ubyte.gz" 2049 16 28 28
fm "$tmp/fm_dims"; idx_images "$tmp/fm_dims/train-images-idx3-ubyte.gz" 2051 16 27 28
fm "$tmp/fm_short"; { be32 2051; be32 16; be32 28; be32 28; head -c 100 /dev/zero; } | gzip >"$tmp/fm_short/train-images-idx3-ubyte.gz"
fm "$tmp/fm_gz"; head -c 40 "$tmp/fm_ok/train-images-idx3-ubyte.gz" >"$tmp/fm_gz/train-images-idx3-ubyte.gz"
fm "$tmp/fm_empty"; : >"$tmp/fm_empty/train-labels-idx1-ubyte.gz"
fm "$tmp/fm_count"; idx_labels "$tmp/fm_count/train-labels-idx1-ubyte.gz" 2049 15 3
fm "$tmp/fm_label"; idx_labels "$tmp/fm_label/t10k-labels-idx1-ubyte.gz" 2049 8 10
fm "$tmp/fm_missing"; rm "$tmp/fm_missing/t10k-images-idx3-ubyte.gz"
bad "train-images-idx3-ubyte.gz" "$C2" "${F[@]}" --data_dir="$tmp/fm_magic"
bad "train-images-idx3-ubyte.gz" "$C2" "${F[@]}" --data_dir="$tmp/fm_dims"
bad "train-images-idx3-ubyte.gz" "$C2" "${F[@]}" --data_dir="$tmp/fm_short"
bad "train-images-idx3-ubyte.gz" "$C2" "${F[@]}" --data_dir="$tmp/fm_gz"
bad "train-labels-idx1-ubyte.gz" "$C2" "${F[@]}" --data_dir="$tmp/fm_empty"
bad "train-labels-idx1-ubyte.gz" "$C2" "${F[@]}" --data_dir="$tmp/fm_count"
bad "t10k-labels-idx1-ubyte.gz" "$C2" "${F[@]}" --data_dir="$tmp/fm_label"
bad "t10k-images-idx3-ubyte.gz" "$C2" "${F[@]}" --data_dir="$tmp/fm_missing"
bad "/nonexistent/fm: Fashion-MNIST not found" "$C2" "${F[@]}" --data_dir=/nonexistent/fm

# --- checkpoints -------------------------------------------------------------------------------------
"$C2" "${TINY[@]}" --checkpoint_dir="$tmp/ck" >/dev/null 2>&1 || fail "making a checkpoint"
mkdir -p "$tmp/ck_trunc" "$tmp/ck_garbage" "$tmp/ck_dir/c2.ckpt"
head -c 2000 "$tmp/ck/c2.ckpt" >"$tmp/ck_trunc/c2.ckpt"
head -c 5000 /dev/urandom >"$tmp/ck_garbage/c2.ckpt"
bad "$tmp/empty_ck/c2.ckpt: no checkpoint to resume" "$C2" "${TINY[@]}" --checkpoint_dir="$tmp/empty_ck" --resume
bad "$tmp/ck_trunc/c2.ckpt: not a usable checkpoint" "$C2" "${TINY[@]}" --checkpoint_dir="$tmp/ck_trunc" --resume
bad "$tmp/ck_garbage/c2.ckpt: not a usable checkpoint" "$C2" "${TINY[@]}" --checkpoint_dir="$tmp/ck_garbage" --resume
bad "$tmp/ck_dir/c2.ckpt: a directory, not a regular file" "$C2" "${TINY[@]}" --checkpoint_dir="$tmp/ck_dir" --resume
bad "made with other settings: lr was 0.1, now 0.05" "$C2" "${TINY[@]}" --checkpoint_dir="$tmp/ck" --resume --lr=0.05
bad "made with other settings: batch_size was 8, now 4" "$C2" "${TINY[@]}" --checkpoint_dir="$tmp/ck" --resume --batch_size=4
bad "$tmp/ck/c2.ckpt: a checkpoint is already there; pass --resume" "$C2" "${TINY[@]}" --checkpoint_dir="$tmp/ck"
bad "a checkpoint of c2, not of c6" "$C6" "${TINY[@]}" --checkpoint_dir="$tmp/ck_c6" --resume --optimizers=sgd \
  < <(mkdir -p "$tmp/ck_c6" && cp "$tmp/ck/c2.ckpt" "$tmp/ck_c6/c6.ckpt")

# --- output folders --------------------------------------------------------------------------------
: >"$tmp/afile"
bad "--results_dir=$tmp/afile: cannot create it" "$C2" "${TINY[@]}" --results_dir="$tmp/afile"
bad "--results_dir=/proc/trainlab: cannot create it" "$C2" "${TINY[@]}" --results_dir=/proc/trainlab
bad "cannot create it" "$C2" "${TINY[@]}" --checkpoint_dir="$tmp/afile"
bad "--trace=/nonexistent/dir/t.json: folder /nonexistent/dir does not exist" "$C2" "${TINY[@]}" --trace=/nonexistent/dir/t.json
bad "--trace=$tmp: is a directory" "$C2" "${TINY[@]}" --trace="$tmp"
bad "$tmp/nothing_here: no such directory" "$REPORT" "$tmp/nothing_here"
bad "--results_dir is required" "$ALL" "${TINY[@]}"

# --- numeric flags at their edges -------------------------------------------------------------------
bad "--num_workers=-1: must be >= 0" "$C2" "${TINY[@]}" --num_workers=-1
bad "--num_workers=100000: must be <= 1024" "$C2" "${TINY[@]}" --num_workers=100000
bad "--threads=100000: must be <= 1024" "$C2" "${TINY[@]}" --threads=100000
bad "--batch_size=0: must be >= 1" "$C2" "${TINY[@]}" --batch_size=0
bad "--batch_size=99999999999: larger than the training set (48 images)" "$C2" "${TINY[@]}" --batch_size=99999999999
bad "--epochs=0: must be >= 1" "$C2" "${TINY[@]}" --epochs=0
bad "--epochs=99999999999: not a valid int32" "$C2" "${TINY[@]}" --epochs=99999999999
bad "--epochs=1.5: not a valid int32" "$C2" "${TINY[@]}" --epochs=1.5
bad "--max_batches_per_epoch=-1: must be >= 0" "$C2" "${TINY[@]}" --max_batches_per_epoch=-1
bad "learning rate must be positive, got nan" "$C2" "${TINY[@]}" --lr=nan
bad "learning rate must be positive, got inf" "$C2" "${TINY[@]}" --lr=inf
bad "learning rate must be positive, got -1" "$C2" "${TINY[@]}" --lr=-1
bad "--lr=abc: not a valid double" "$C2" "${TINY[@]}" --lr=abc
bad "momentum must be in [0, 1), got 1" "$C2" "${TINY[@]}" --momentum=1
bad "weight decay must be >= 0, got -1" "$C2" "${TINY[@]}" --weight_decay=-1
bad "--seed=-1: not a valid uint64" "$C2" "${TINY[@]}" --seed=-1
bad "--repeats=0: must be >= 1" "$C2" "${TINY[@]}" --repeats=0
bad "--checkpoint_every=-1: must be >= 0" "$C2" "${TINY[@]}" --checkpoint_every=-1 --checkpoint_dir="$tmp/x"
bad "--synthetic_train=0: must be >= 1" "$C2" "${TINY[@]}" --synthetic_train=0
bad "--evaluate=maybe: not a valid bool" "$C2" "${TINY[@]}" --evaluate=maybe
bad "--epochs needs a value" "$C2" --epochs
bad "--max_workers=-1: must be >= 0" "$C3" "${TINY[@]}" --max_workers=-1
bad "--workers=0,x: 'x' is not a worker count" "$C3" "${TINY[@]}" --workers=0,x
bad "--workers=0,,1: empty item in the list" "$C3" "${TINY[@]}" --workers=0,,1

# --- unknown names ------------------------------------------------------------------------------------
bad "unknown flag --epoch (--help lists the flags)" "$C2" --epoch=3
bad "--dataset=imagenet: unknown dataset" "$C2" --dataset=imagenet
bad "--device=tpu: unknown device" "$C2" "${TINY[@]}" --device=tpu
bad "unknown optimizer 'lamb'; known: adadelta, adagrad, adam, adamw, rmsprop, sgd, sgd_nesterov" "$C2" "${TINY[@]}" --optimizer=lamb
bad "unknown strategy 'warp'" "$C2" "${TINY[@]}" --strategy=warp
bad "unknown optimizer 'lamb'" "$C6" "${TINY[@]}" --optimizers=sgd,lamb
bad "unknown strategy 'warp'" "$C8" "${TINY[@]}" --strategies=eager,warp
bad "--progress=sometimes: must be auto, on or off" "$C2" "${TINY[@]}" --progress=sometimes
bad "--preset=fast: must be quick or lab" "$ALL" "${TINY[@]}" --preset=fast --results_dir="$tmp/r"
# The flag's old spelling is still read.
bad "--preset=fast: must be quick or lab" "$ALL" "${TINY[@]}" --profile=fast --results_dir="$tmp/r"

# --- models ------------------------------------------------------------------------------------------
M="tests/testdata/models"
printf 'not a zip archive\n' >"$tmp/text.pt"
bad "--lr_schedule=linear: not constant, step, cosine or onecycle" "$C2" "${TINY[@]}" --lr_schedule=linear
bad "--label_smoothing=1: must be in [0, 1)" "$C2" "${TINY[@]}" --label_smoothing=1
bad "--lr_milestones is for --lr_schedule=step, not --lr_schedule=cosine" "$C2" "${TINY[@]}" --lr_schedule=cosine --lr_milestones=3
bad "--warmup_epochs=2: must be shorter than the run (--epochs=2)" "$C2" "${TINY[@]}" --lr_schedule=onecycle --warmup_epochs=2 --epochs=2
bad "--tta=hflip: not none or flip" "$C2" "${TINY[@]}" --tta=hflip
bad "--target_accuracy=101: must be a test top-1 % in [0, 100]" "$C2" "${TINY[@]}" --target_accuracy=101
bad "--keep_best keeps the best test epoch's weights: it needs --save_model and --evaluate (or --target_accuracy)" "$C2" "${TINY[@]}" --keep_best --evaluate
bad "--profile_steps=0: must be between 1 and 1000" "$PROFILE" "${TINY[@]}" --profile_steps=0
# time_to_accuracy: an unknown recipe (before any training), no target, a negative test count, a
# warm-up the recipe's one-cycle cannot fit, a flag of another experiment.
bad "--recipe: unknown recipe 'slow' (known: lab, fast)" "$TTA" "${TINY[@]}" --recipe=lab,slow
bad "--target_accuracy: time_to_accuracy needs a target test top-1 % above 0" "$TTA" "${TINY[@]}" --target_accuracy=0
bad "--test_images=-5: must be >= 0 (0 = all)" "$TTA" "${TINY[@]}" --test_images=-5
bad "--recipe=fast: --warmup_epochs=1: must be shorter than the run (--epochs=1)" "$TTA" "${TINY[@]}" --recipe=fast --warmup_epochs=1
bad "--recipe=: empty item in the list" "$TTA" "${TINY[@]}" --recipe=
bad "unknown flag --recipe (--help lists the flags)" "$C2" "${TINY[@]}" --recipe=fast
bad "--model: unknown model 'resnet50'; known: resnet18, resnet18_no_bn, torchscript" "$C2" "${TINY[@]}" --model=resnet50
bad "--model=torchscript needs --model_path=FILE" "$C2" "${TINY[@]}" --model=torchscript
bad "/nonexistent/m.pt: no such TorchScript file" "$C2" "${TINY[@]}" --model=torchscript --model_path=/nonexistent/m.pt
bad "$tmp/text.pt: not a TorchScript archive" "$C2" "${TINY[@]}" --model=torchscript --model_path="$tmp/text.pt"
bad "$M/no_forward.pt: the scripted module has no forward() method" "$C2" "${TINY[@]}" --model=torchscript --model_path="$M/no_forward.pt"
bad "$M/wrong_classes.pt: forward() maps a (2, 3, 32, 32) batch to (2, 5) Float; trainlab needs (2, 10)" "$Q1Q4" --model=torchscript --model_path="$M/wrong_classes.pt"
bad "--model_path is for a model loaded from a file (--model=torchscript), not --model=resnet18" "$C2" "${TINY[@]}" --model_path="$M/tiny_cnn.pt"
bad "--nobatch_norm selects --model=resnet18_no_bn; it does not apply to --model=torchscript" "$C2" "${TINY[@]}" --nobatch_norm --model=torchscript --model_path="$M/tiny_cnn.pt"
bad "c7 compares resnet18 with resnet18_no_bn; --model=torchscript" "$C7" "${TINY[@]}" --model=torchscript --model_path="$M/tiny_cnn.pt"
bad "--save_model=/nonexistent/dir/w.pt: folder /nonexistent/dir does not exist" "$C2" "${TINY[@]}" --save_model=/nonexistent/dir/w.pt
bad "--save_model writes one run's weights; it takes --repeats=1" "$C2" "${TINY[@]}" --save_model="$tmp/w.pt" --repeats=2

# --- contradictions and flags in the wrong place ------------------------------------------------------
bad "--device=cuda contradicts --disable_cuda" "$C2" "${TINY[@]}" --device=cuda --disable_cuda
bad "--device=cuda: no CUDA device" "$C2" "${TINY[@]}" --device=cuda
bad "cuda_graph needs a CUDA device" "$C2" "${TINY[@]}" --strategy=cuda_graph
bad "--resume needs --checkpoint_dir" "$C2" "${TINY[@]}" --resume
bad "--resume=maybe: not no, yes or auto" "$C2" "${TINY[@]}" --resume=maybe
bad "--dist_backend=mpi: not auto, gloo or nccl" "$C2" "${TINY[@]}" --dist_backend=mpi
# NCCL on a CPU rank: the CPU build has none; the --config=cuda build has it, for CUDA devices only.
WORLD_SIZE=2 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=1 bad "--dist_backend=nccl: " "$C2" "${TINY[@]}" --device=cpu --dist_backend=nccl
grep -qE 'this build has no NCCL process group \(build with --config=cuda|NCCL runs on CUDA devices and this rank trains on cpu' "$tmp/err" ||
  fail "the NCCL refusal names neither the build nor the device: $(cat "$tmp/err")"
bad "--checkpoint_every needs --checkpoint_dir" "$C2" "${TINY[@]}" --checkpoint_every=5
bad "--epochs is not a flag of q1_q4" "$Q1Q4" --epochs=3
bad "unknown flag --workers (--help lists the flags)" "$C2" "${TINY[@]}" --workers=1
bad "unexpected argument 'extra'" "$C2" "${TINY[@]}" extra

# --- special and hostile files: refused at once, never a wait or an unbounded read ----------------
mkdir -p "$tmp/ck_fifo" "$tmp/ck_zero"
mkfifo "$tmp/ck_fifo/c2.ckpt"
ln -s /dev/zero "$tmp/ck_zero/c2.ckpt"
bad "$tmp/ck_fifo/c2.ckpt: a FIFO, not a regular file" "$C2" "${TINY[@]}" --checkpoint_dir="$tmp/ck_fifo" --resume
bad "$tmp/ck_zero/c2.ckpt: a character device, not a regular file" "$C2" "${TINY[@]}" --checkpoint_dir="$tmp/ck_zero" --resume
mk cifar_fifo; rm "$tmp/cifar_fifo/data_batch_4.bin"; mkfifo "$tmp/cifar_fifo/data_batch_4.bin"
bad "data_batch_4.bin: a FIFO, not a regular file" "$C2" "${C[@]}" --data_dir="$tmp/cifar_fifo"
# A Fashion-MNIST images file whose header says 1 image of 28x28, then 64 MiB of zeros (64 KiB gzipped).
mkdir -p "$tmp/fm_bomb"
python3 -c 'import gzip, sys
head = bytes([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28])
with gzip.open(sys.argv[1], "wb") as f:
    f.write(head)
    for _ in range(64): f.write(bytes(1 << 20))' "$tmp/fm_bomb/train-images-idx3-ubyte.gz"
bad "train-images-idx3-ubyte.gz: inflates to more than the 800 bytes its IDX header says" \
  "$C2" --dataset=fashion_mnist --data_dir="$tmp/fm_bomb" --threads=1

# --- memory: a configuration that cannot fit is refused before it allocates --------------------------
bad "--batch_size=5000 --num_workers=1024: this run needs about" "$C2" --dataset=synthetic --synthetic_train=10000 \
  --synthetic_test=16 --num_workers=1024 --batch_size=5000 --max_batches_per_epoch=1 --epochs=1 --threads=1

# --- output paths: checked before the first batch ----------------------------------------------------
bad "--save_model=$tmp: is a directory (give a file name)" "$C2" "${TINY[@]}" --save_model="$tmp"
grep -q '^Epoch' "$tmp/out" && fail "c2 trained before refusing --save_model=DIR"

# --- a name listed twice would silently reuse a run ---------------------------------------------------
bad "--optimizers=sgd,sgd: 'sgd' is listed twice" "$C6" "${TINY[@]}" --optimizers=sgd,sgd
bad "--workers=2,2: '2' is listed twice" "$C3" "${TINY[@]}" --workers=2,2
bad "--strategies=eager,eager: 'eager' is listed twice" "$C8" "${TINY[@]}" --strategies=eager,eager

# --- results read back are checked: type and range, with the file and the field named --------------
mkdir -p "$tmp/res_bad"
"$C3" "${TINY[@]}" --workers=0 --results_dir="$tmp/res_bad" >/dev/null 2>&1 || fail "c3 to write c3.json"
sed -i -E 's/"best_workers_total": [0-9]+/"best_workers_total": "4"/' "$tmp/res_bad/c3.json"
bad "$tmp/res_bad/c3.json: summary.best_workers_total: expected an integer, got the string \"4\"" \
  "$C4" "${TINY[@]}" --results_dir="$tmp/res_bad"
sed -i -E 's/"best_workers_total": "4"/"best_workers_total": 100000/' "$tmp/res_bad/c3.json"
bad "$tmp/res_bad/c3.json: summary.best_workers_total: 100000 is out of range (-1 to 1024)" \
  "$C4" "${TINY[@]}" --results_dir="$tmp/res_bad"
bad "$tmp/res_bad/c3.json: summary.best_workers_total: 100000 is out of range (-1 to 1024)" "$REPORT" "$tmp/res_bad"

echo "bad_input_test: $cases cases, $failures failure(s)"
((cases >= 30)) || fail "fewer than 30 cases"
exit $((failures > 0))
