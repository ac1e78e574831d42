#!/usr/bin/env bash
# The training checks on a CUDA machine, in one go: tests/ml, then both training benchmarks (reward model
# on the tiny and on a GPT-2-small-shaped model; PPO step split at 16x32 and 256x128). Works offline and
# without installing the project: wheels in .whl/ (docs/training.md "Training on a GPU") go to a private folder.
# Figures and logs land in $OUT (default /tmp/gpu-check); a summary is printed at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
export USE_HUB_KERNELS=NO HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi

{
  date -u +"date: %Y-%m-%d %H:%M UTC"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/gpu: /'
  $PY -c "import torch, transformers, trl, accelerate; print('versions: torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__, 'accelerate', accelerate.__version__)"
} | tee "$OUT/machine.txt"

step() {  # name, command...: run it, keep its output, note its exit status and seconds
  local name=$1; shift
  local start=$SECONDS
  "$@" >"$OUT/$name.txt" 2>&1
  echo "$name: exit $? in $((SECONDS - start)) s" | tee -a "$OUT/summary.txt"
}

# tests/ml without Django: pytest reads neither the Django conftest nor the project's settings.
step tests $PY -m pytest -q -p no:cacheprovider -p no:django --confcutdir=tests/ml -c /dev/null --rootdir=. tests/ml
step rm_tiny $PY bench/reward_model.py --repeats 1
step rm_gpt2_small $PY bench/reward_model.py --repeats 1 --gpt2-small --train 256 --lr 1e-4
step ppo_small $PY bench/ppo.py --steps 3
step ppo_large $PY bench/ppo.py --steps 3 --skip-tiny --batch-size 256 --mini-batch-size 64 --micro-batch-size 16 --max-new-tokens 128
step ppo_static $PY bench/ppo.py --steps 3 --skip-tiny --batch-size 256 --mini-batch-size 64 --micro-batch-size 16 --max-new-tokens 128 --generation-batch-size 256 --static-cache --compile
# Every stage under DeepSpeed ZeRO-2 and ZeRO-3 on one GPU (issue 16), when deepspeed is installed
# (an sdist on PyPI: `DS_BUILD_OPS=0 pip install deepspeed`, then it compiles what it needs at run time).
if $PY -c "import deepspeed" 2>/dev/null; then
  step zero_smoke $PY bench/zero_smoke.py --out "$OUT/zero-smoke"
else
  echo "zero_smoke: skipped (no deepspeed)" | tee -a "$OUT/summary.txt"
fi

tail -n 3 "$OUT/tests.txt"
grep -h "^ratio\|^accuracy\|mean of steps\|tokens/s\|share" "$OUT"/rm_*.txt "$OUT"/ppo_*.txt
grep -h "^zero" "$OUT"/zero_smoke.txt 2>/dev/null
cat "$OUT/summary.txt"
