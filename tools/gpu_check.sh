#!/usr/bin/env bash
# One call on a GPU machine: every CUDA path of ganland once, with its numbers, then (second part)
# what a 2-core CPU cannot train in a session. Run on one H200 on 2026-12-04, every step rc=0; its
# numbers are in docs/distributed.md ("What has run on a GPU").
#
#   bash tools/gpu_check.sh paths          # about 5 minutes on an H200: train, eval, sample,
#                                          # resume (same device and onto the CPU), torchrun + NCCL, ResNet
#   bash tools/gpu_check.sh small MINUTES  # the small-data pair of issue 16 (1,000 Fashion-MNIST images,
#                                          # no augmentation against translation + cutout), MINUTES each
#   bash tools/gpu_check.sh levers [MIN]   # fashion-dcgan as it is, compiled, at batch 256, both (MIN each,
#                                          # 0.6: 4.5 minutes on an H200); LEVERS="default b256" picks some
#   bash tools/gpu_check.sh extend MINUTES # continue the run folders that tools/device_carry.py packed into
#                                          # $CARRY (default .device-carry) to MINUTES of training in all,
#                                          # side by side (one process each), each new checkpoint scored;
#                                          # with DEVICE=cpu too, for the whole time (no tiny mode: try it
#                                          # on a copy with MINUTES a little past the runs' own)
#
# Needs Fashion-MNIST's four IDX files in $FMNIST (default .fmnist/ in the repository root: copy
# /usr/share/datasets/fashion-mnist/* there and carry it; the GPU machine reaches no network) and
# a python3 with PyTorch and ganland's few needs (PY=...; the lent H200 machine's python3 has them
# all). Trains into $RUNS (default /tmp/gpu-check-runs), writes its pictures and the small-data
# curves to $OUT (default gpu-check/) and prints one '== name rc=N seconds=S' line per step.
# DEVICE=cpu runs the same steps on the CPU, tiny, to check this script before spending GPU time.
#
# With the session's device tool, from the repository root here:
#   mkdir -p .fmnist; cp /usr/share/datasets/fashion-mnist/* .fmnist/
#   run(command="bash tools/gpu_check.sh paths 2>&1", carry=[".fmnist"], timeout_s=540)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-gpu-check}
FMNIST=${FMNIST:-.fmnist}
DEVICE=${DEVICE:-cuda}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
R=${RUNS:-/tmp/gpu-check-runs}
mkdir -p "$OUT" "$R"
GL=("$PY" -m ganland)
DATA=(--set "data.root=$FMNIST" --set "train.device=$DEVICE" --no-progress)
if [ "$DEVICE" = cpu ]; then  # the dry run: same commands, a few steps each
  TRAIN=(--steps 30); SHORT=(--steps 30); WHOLE=90; SMALL_MIN=${2:-0.2}; N=500; LEVER=(--steps 120)
else
  TRAIN=(--minutes 1); SHORT=(--minutes 0.5); WHOLE=2000; SMALL_MIN=${2:-3}; N=10000; LEVER=(--minutes "${2:-0.6}")
fi

step() {  # step NAME command...: run it, say how it went and how long it took
  local name=$1 t0=$SECONDS rc
  shift
  echo "== $name: $*" >&2
  "$@"
  rc=$?
  echo "== $name rc=$rc seconds=$((SECONDS - t0))" >&2
  return 0
}

newest_step() {  # the step of a run's newest checkpoint
  "$PY" -c "import sys; from ganland.training.checkpoint import list_checkpoints, load_checkpoint
print(load_checkpoint(list_checkpoints(sys.argv[1])[0])['counters']['step'])" "$1"
}

paths() {
  rm -rf "$R"/{dcgan,whole,halves,dcgan-on-cpu,torchrun,sngan,cond}  # a second try on the same machine starts afresh
  step env bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null;
    $PY -c 'import torch, os; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda,
      \"available\", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else \"\",
      \"bf16\", torch.cuda.is_available() and torch.cuda.is_bf16_supported(), \"cores\", os.cpu_count())'"
  # the default recipe: bf16 autocast on CUDA (speed.amp auto), its speed line, FID on the GPU
  step train-dcgan "${GL[@]}" train fashion-dcgan "${DATA[@]}" "${TRAIN[@]}" --out "$R/dcgan"
  step eval-dcgan "${GL[@]}" eval "$R/dcgan" --n "$N" --device "$DEVICE"
  step sample-dcgan "${GL[@]}" sample "$R/dcgan" --out "$OUT/dcgan-samples.png" --device "$DEVICE"
  # exact resume on the device: two halves against one whole run, same seed
  step resume-whole "${GL[@]}" train fashion-dcgan "${DATA[@]}" --steps "$WHOLE" --out "$R/whole"
  step resume-half "${GL[@]}" train fashion-dcgan "${DATA[@]}" --steps "$(( WHOLE / 2 ))" --out "$R/halves"
  step resume-rest "${GL[@]}" train --resume "$R/halves" --steps "$WHOLE"
  step resume-compare "$PY" - "$R/whole" "$R/halves" <<'EOF'
import sys, torch
from ganland.training.checkpoint import list_checkpoints, load_checkpoint
a, b = (load_checkpoint(list_checkpoints(r)[0]) for r in sys.argv[1:])
same = {k: all(torch.equal(a[k][n], b[k][n]) for n in a[k]) for k in ("G", "D", "G_ema")}
worst = {k: max(float((a[k][n].float() - b[k][n].float()).abs().max()) for n in a[k] if a[k][n].is_floating_point())
         for k in ("G", "D")}
print("steps", a["counters"]["step"], b["counters"]["step"], "bitwise equal", same, "largest difference", worst)
EOF
  # a run trained on the GPU continued on the CPU (and its generator's state moved across)
  cp -r "$R/dcgan" "$R/dcgan-on-cpu"
  step resume-on-cpu "${GL[@]}" train --resume "$R/dcgan-on-cpu" --set train.device=cpu \
    --steps "$(( $(newest_step "$R/dcgan") + 20 ))"
  # the ResNet recipe the GPU is for, and the conditional one with its accuracy
  step train-sngan "${GL[@]}" train fashion-sngan "${DATA[@]}" "${SHORT[@]}" --out "$R/sngan"
  step eval-sngan "${GL[@]}" eval "$R/sngan" --n "$N" --device "$DEVICE"
  step train-cond "${GL[@]}" train fashion-dcgan-cond "${DATA[@]}" "${SHORT[@]}" --out "$R/cond"
  step eval-cond "${GL[@]}" eval "$R/cond" --n "$N" --device "$DEVICE"
  # torchrun with NCCL on one GPU (the single-node launcher path; several GPUs need several devices),
  # last and bounded, so that a collective that hangs in a sandbox costs nothing else
  if [ "$DEVICE" = cuda ]; then
    step torchrun-nccl timeout 150 "$(dirname "$(command -v "$PY")")/torchrun" --standalone --nproc-per-node=1 \
      -m ganland train fashion-dcgan "${DATA[@]}" --steps 300 --out "$R/torchrun"
  fi
}

small() {  # issue 16's small-data pair at a GPU's step rate, learning curves and the summary JSON
  rm -rf "$R/small"
  step small-pair "$PY" benchmarks/quality_per_minute.py --only small-noaug-full,small-diffaug-tc-full --seed 1 \
    --minutes "$SMALL_MIN" --out "$R/small" --png "$OUT/small-data-curves.png" --set "data.root=$FMNIST" \
    --set "train.device=$DEVICE" --eval-device "$DEVICE" > "$OUT/small-data.json"
  tail -n 1 "$OUT/small-data.json"  # the summary; every run's row and curve stay in the file
}

levers() {  # what buys quality per GPU-minute: the default recipe as it is, compiled, and at batch 256
  rm -rf "$R"/lever-*
  local name
  for name in ${LEVERS:-default compile b256 b256-compile}; do
    local extra=()
    case $name in
      default) ;;
      compile) extra=(--set speed.compile=true) ;;
      b256) extra=(--set train.batch_size=256) ;;
      b256-compile) extra=(--set train.batch_size=256 --set speed.compile=true) ;;
      *) echo "unknown lever $name" >&2; return 2 ;;
    esac
    step "train-$name" "${GL[@]}" train fashion-dcgan "${DATA[@]}" ${extra[@]+"${extra[@]}"} "${LEVER[@]}" \
      --out "$R/lever-$name"
    step "eval-$name" "${GL[@]}" eval "$R/lever-$name" --n "$N" --device "$DEVICE"
    "$PY" - "$R/lever-$name" <<'EOF'
import json, os, sys
log = sys.argv[1] + "/stats.jsonl"
rows = [r for r in map(json.loads, open(log)) if r.get("kind") == "train"] if os.path.exists(log) else []
if not rows:
    raise SystemExit(f"rate {sys.argv[1]}: no training rows (the run failed before its first log)")
end = rows[-1]  # the last row, written after the run's last pictures and checkpoint
whole = f"rate {sys.argv[1]}: {end['step']} steps in {end['seconds']:.0f} s"
steady = [r for r in rows if not r.get("partial")]  # rows of whole logging intervals
if len(steady) < 2:
    print(whole + "; too few log rows for a second-half rate")
else:
    a, b = steady[(len(steady) - 1) // 2], steady[-1]  # the second half: after compilation and warm-up
    rate = (b["step"] - a["step"]) / max(b["seconds"] - a["seconds"], 1e-9)
    print(f"{whole}; second half {rate:.1f} steps/s, {rate * b['images'] / b['step']:.0f} images/s")
EOF
  done
}

extend() {  # runs trained elsewhere (a CPU hour, say) continued here, all at once: their curves go on
  local minutes=$1 carry=${CARRY:-.device-carry} dir name seed found=0
  [ -d "$carry/runs" ] || { echo "no $carry/runs: pack it first with tools/device_carry.py" >&2; return 2; }
  carry=$(cd "$carry" && pwd)
  # The runs' data.root is null, so their (cut) data is found in the cache folder; the feature and
  # speed caches land there too (harmless on the device, where the folder is a copy).
  export GANLAND_CACHE="$carry"
  for dir in "$carry"/runs/*-seed*/; do
    [ -d "$dir" ] || continue  # the pattern itself, when nothing matched
    found=1
    name=$(basename "$dir"); seed=${name##*-seed}; name=${name%-seed*}
    step "extend-$name" "$PY" benchmarks/quality_per_minute.py --only "$name" --seed "$seed" --extend \
      --minutes "$minutes" --out "$carry/runs" --png "$dir/curve.png" --set "train.device=$DEVICE" \
      --eval-device "$DEVICE" > "$dir/benchmark.json" 2> "$dir/benchmark.log" &
  done
  [ "$found" = 1 ] || { echo "no run folders (NAME-seedN) in $carry/runs" >&2; return 2; }
  wait
  for dir in "$carry"/runs/*-seed*/; do  # each generator as it ended, to score again or look at elsewhere
    "${GL[@]}" export "$dir" --out "$dir/generator.safetensors" >&2
  done
  # One file back (the device tool returns 8 at most): each run's benchmark row and log, curve,
  # metrics, stats and pictures, and its generator; checkpoints (17 MB each for the ResNet) stay.
  tar czf "$OUT/extended-runs.tgz" --exclude=checkpoints -C "$carry" runs
  grep -h '^== ' "$carry"/runs/*/benchmark.log
  tail -q -n 1 "$carry"/runs/*/benchmark.json
}

case "${1:-paths}" in
  paths) paths ;;
  small) small ;;
  levers) levers ;;
  extend) extend "${2:?give the minutes of training each run should have in all}" ;;
  *) echo "usage: bash tools/gpu_check.sh paths | small [MINUTES] | levers [MINUTES] | extend MINUTES" >&2; exit 2 ;;
esac
