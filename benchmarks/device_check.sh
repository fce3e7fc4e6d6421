#!/usr/bin/env bash
# Issue 6's GPU checks in one call of the device tool (one H100/H200, <= 10 minutes):
#   1. throughput of the tracer (bench_tracing.py) at 1, 8 and 40 realisations per call,
#      with the peak device memory of each;
#   2. the device's FP32-FMA and cosine roof, and the tracer's ratio to it (roofline.py);
#   3. the relative-diffusion paper's reference run (configs/paper.toml: 12288 x 120
#      trajectories, N = 256, to tOmega = 1000, dt = 0.02), timed, with its C_l table;
#   4. the step-size test of that run at full statistics: dt = 0.02 (reused) vs 0.01.
# Every stage has its own time limit, and its results are in $OUT as soon as it ends: a stage
# that overruns is stopped and the next one starts (a stopped run file resumes on a rerun).
#
# Prepare here, once per session (the device machine has no network; it has jax with CUDA,
# diffrax, numpyro and h5py, but not healpy):
#   bash benchmarks/device_check.sh --fetch          # healpy and its needs -> .whl/ (~21 MB)
# Run there, through the device tool:
#   run(command="bash benchmarks/device_check.sh", carry=[".whl"], timeout_s=600)
# Rehearse anywhere on a CPU (tiny sizes, the same code path and files):
#   DRY=1 OUT=/tmp/device-out PY=.venv/bin/python bash benchmarks/device_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--fetch" ]]; then
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl healpy astropy pyerfa astropy-iers-data
    exit $?
fi

OUT=${OUT:?OUT must name the folder for the results}
PY=${PY:-python3}
DRY=${DRY:-0}
PER_CALL=${PER_CALL:-40}  # realisations per call in the paper run (divides 120)
RUNS=${RUNS:-runs}        # run files (large: they stay on the machine)
WHL=${WHL:-.whl}          # carried wheels, installed when present
START=$SECONDS
mkdir -p "$OUT" "$RUNS"
LOG="$OUT/log.txt"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1

if compgen -G "$WHL/*.whl" >/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "$WHL"/*.whl || exit 1
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

# stage NAME LIMIT_S COMMAND...: run with a time limit, log start, end and exit status
stage() {
    local name=$1 limit=$2
    shift 2
    echo "[$((SECONDS - START)) s] $name (limit $limit s): $*" | tee -a "$LOG" >&2
    timeout "$limit" "$@" 2>>"$LOG"
    local rc=$?
    echo "[$((SECONDS - START)) s] $name exit $rc" | tee -a "$LOG" >&2
    return $rc
}

if [[ $DRY == 1 ]]; then  # the same stages at toy sizes
    BENCH=(--nside 8 --chunk 768 --t-omega 0.4 --repeats 1)
    REALISATIONS=(1 2)
    CONFIG=configs/reduced.toml
    SIZES=(--realisations 4 --t-omega-max 20 --chunk 768)
    T_CL=20 CL_ELL=16 ROOF=(--repeats 1)
    PER_CALL=2
else
    BENCH=(--chunk 12288 --repeats 3)
    REALISATIONS=(1 8 40)
    CONFIG=configs/paper.toml
    SIZES=(--chunk 12288)
    T_CL=158.4893192 CL_ELL=32 ROOF=()  # the time and multipoles of data/simulated_cl_paper.csv
fi

{ nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv || true
  $PY -c 'import jax, diffrax, numpyro, healpy; print(jax.__version__, jax.devices(),
diffrax.__version__, numpyro.__version__, healpy.__version__)'; } >"$OUT/env.txt" 2>&1

# 1. throughput (JSON lines)
for r in "${REALISATIONS[@]}"; do
    stage "bench R=$r" 120 $PY benchmarks/bench_tracing.py "${BENCH[@]}" --realisations "$r" \
        >>"$OUT/bench.jsonl"
done

# 2. roof and ratio, with the best measured rate
rate=$($PY -c 'import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print(max(r["mode_evaluations_per_second_median"] for r in rows) if rows else 0)' \
    "$OUT/bench.jsonl")
stage roofline 90 $PY benchmarks/roofline.py "${ROOF[@]}" --tracer "$rate" >"$OUT/roofline.json"

# 3. the reference run, written where step_convergence.py finds its dt = 0.02 run
run=$RUNS/dt_0.02.h5
stage "paper run" 240 $PY -m crsky simulate --config "$CONFIG" --dt 0.02 "${SIZES[@]}" \
    --realisations-per-call "$PER_CALL" --out "$run" --resume --json --no-progress \
    >"$OUT/paper.json"
$PY - "$run" >"$OUT/paper_realisations.json" 2>>"$LOG" <<'EOF'
import json, sys
import h5py
with h5py.File(sys.argv[1], "r") as f:  # per-realisation seconds (a share of their call)
    done = {k: dict(f["realisations"][k].attrs) for k in f["realisations"] if k.startswith("r")}
print(json.dumps({k: {a: float(v) for a, v in attrs.items()} for k, attrs in done.items()}))
EOF
$PY -m crsky cltable "$run" --t-omega "$T_CL" --ell-max "$CL_ELL" --out "$OUT/paper_cl.csv" 2>>"$LOG"

# 4. step-size test with what time is left (the call's limit is 600 s)
left=$((570 - (SECONDS - START)))
if ((left > 30)); then
    stage "step test" "$left" $PY benchmarks/step_convergence.py --config "$CONFIG" \
        "${SIZES[@]}" --realisations-per-call "$PER_CALL" --dts 0.02 0.01 --ell-max 16 \
        --out "$RUNS" >"$OUT/step.jsonl"
fi
echo "[$((SECONDS - START)) s] done" | tee -a "$LOG"
