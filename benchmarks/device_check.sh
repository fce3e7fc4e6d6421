#!/usr/bin/env bash
# The GPU checks in one call (one H100/H200, <= 10 minutes):
#   1. throughput of the tracer (bench_tracing.py) at 1, 8 and 40 realisations per call,
#      with the peak device memory of each;
#   2. the device's FP32-FMA and cosine roof, and the tracer's ratio to it (roofline.py);
#   3. the relative-diffusion paper's reference run (configs/paper.toml: 12288 x 120
#      trajectories, N = 256, to tOmega = 1000, dt = 0.02), timed, with its C_l table;
#   4. the step-size test of that run at full statistics: dt = 0.02 (reused) vs 0.01;
#   5. with the time left, whether XLA fuses the field (bench_tracing.py --variant fori|fused).
# Each stage is stopped at its own limit and at the end of BUDGET seconds in all, and its
# results are in $OUT as soon as it ends (a stopped run file resumes on a rerun). The exit
# status is the number of stages that failed or were stopped (0: all ran to their end).
#
# Prepare on a machine with network access, once (the GPU machine may have none; this script
# expects jax with CUDA, diffrax, numpyro and h5py there, and installs healpy if missing):
#   bash benchmarks/device_check.sh --fetch          # healpy and its needs -> .whl/ (~21 MB)
# Run on the GPU machine with .whl/ copied beside the repository, within a 600 s limit:
#   bash benchmarks/device_check.sh
# Rehearse anywhere on a CPU (tiny sizes, the same code path and files):
#   DRY=1 OUT=/tmp/device-out PY=.venv/bin/python bash benchmarks/device_check.sh
# Needs bash >= 4.4 (empty arrays under set -u).
set -uo pipefail

main() {
    cd "$(dirname "$0")/.." || return 1
    if [[ "${1:-}" == "--fetch" ]]; then
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
            --implementation cp --platform manylinux_2_28_x86_64 \
            --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            -d "${WHL:-.whl}" healpy astropy pyerfa astropy-iers-data
        return $?
    fi

    OUT=${OUT:?OUT must name the folder for the results}
    PY=${PY:-python3}
    DRY=${DRY:-0}
    BUDGET=${BUDGET:-560}     # seconds for everything (fits a 600 s limit per call)
    PER_CALL=${PER_CALL:-40}  # realisations per call in the paper run (divides 120)
    RUNS=${RUNS:-runs}        # run files (large: they stay on the machine)
    WHL=${WHL:-.whl}          # carried wheels, installed when healpy is missing
    START=$SECONDS
    FAILED=0
    mkdir -p "$OUT" "$RUNS"
    LOG="$OUT/log.txt"
    : >"$LOG"
    export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1

    if ! $PY -c 'import healpy' 2>/dev/null && compgen -G "$WHL/*.whl" >/dev/null; then
        stage wheels 120 $PY -m pip install -q --no-index --no-deps --no-compile \
            --no-cache-dir --upgrade --target /tmp/site "$WHL"/*.whl
        export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
    fi
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

    if [[ $DRY == 1 ]]; then  # the same stages at toy sizes
        BENCH=(--nside 8 --chunk 768 --t-omega 0.4 --repeats 1)
        BIG=(--nside 8 --chunk 768 --t-omega 0.4 --repeats 1)
        REALISATIONS=(1 2)
        CONFIG=configs/reduced.toml
        SIZES=(--realisations 4 --t-omega-max 20 --chunk 768)
        T_CL=20 CL_ELL=16 ROOF=(--repeats 1)
        PER_CALL=2
    else
        BENCH=(--chunk 12288 --repeats 3)
        BIG=(--nside 128 --chunk 196608 --t-omega 1 --repeats 3)
        REALISATIONS=(1 8 40)
        CONFIG=configs/paper.toml
        SIZES=(--chunk 12288)
        # the time and multipoles of data/simulated_cl_paper.csv
        T_CL=158.4893192 CL_ELL=32 ROOF=()
    fi

    { nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv
      timeout 120 $PY -c 'import jax, diffrax, numpyro, healpy
print(jax.__version__, jax.devices(), diffrax.__version__, numpyro.__version__,
      healpy.__version__)'; } >"$OUT/env.txt" 2>&1

    # 1. throughput (JSON lines)
    for r in "${REALISATIONS[@]}"; do
        stage "bench R=$r" 120 $PY benchmarks/bench_tracing.py "${BENCH[@]}" \
            --realisations "$r" >>"$OUT/bench.jsonl"
    done

    # 2. roof and ratio, with the best measured rate
    local rate
    rate=$($PY -c 'import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print(max(r["mode_evaluations_per_second_median"] for r in rows))' \
        "$OUT/bench.jsonl" 2>>"$LOG") || rate=0
    stage roofline 90 $PY benchmarks/roofline.py "${ROOF[@]}" --tracer "$rate" \
        >"$OUT/roofline.json"

    # 3. the reference run, written where step_convergence.py finds its dt = 0.02 run
    local run=$RUNS/dt_0.02.h5
    stage "paper run" 240 $PY -m crsky simulate --config "$CONFIG" --dt 0.02 "${SIZES[@]}" \
        --realisations-per-call "$PER_CALL" --out "$run" --resume --json --no-progress \
        >"$OUT/paper.json"
    stage "per-realisation attributes" 60 $PY -c 'import json, sys
import h5py
with h5py.File(sys.argv[1], "r") as f:  # wall_seconds: a share of the call
    group = f["realisations"]
    print(json.dumps({k: {a: float(v) for a, v in group[k].attrs.items()}
                      for k in group if k.startswith("r")}))' "$run" \
        >"$OUT/paper_realisations.json"
    stage "C_l table" 60 $PY -m crsky cltable "$run" --t-omega "$T_CL" --ell-max "$CL_ELL" \
        --out "$OUT/paper_cl.csv"

    # 4. step-size test, keeping 90 s for 5
    stage "step test" $((BUDGET - 90 - (SECONDS - START))) $PY benchmarks/step_convergence.py \
        --config "$CONFIG" "${SIZES[@]}" --realisations-per-call "$PER_CALL" \
        --dts 0.02 0.01 --ell-max 16 --out "$RUNS" >"$OUT/step.jsonl"

    # 5. does XLA fuse the field? One big call (16 realisations' worth of trajectories, one
    #    field): the engine, the bare loop with matmuls, the bare loop with the matmul-free field
    for variant in engine fori fused; do
        stage "variant $variant" 120 $PY benchmarks/bench_tracing.py --variant "$variant" \
            "${BIG[@]}" >>"$OUT/bench.jsonl"
    done
    echo "[$((SECONDS - START)) s] done, $FAILED stage(s) failed or stopped" | tee -a "$LOG" >&2
    return "$FAILED"
}

# stage NAME LIMIT_S COMMAND...: run with the smaller of its limit and the budget left; log its
# start, end and exit status (124: stopped at the limit), count it when it fails
stage() {
    local name=$1 limit=$2
    shift 2
    local left=$((BUDGET - (SECONDS - START)))
    ((limit < left)) || limit=$left
    if ((limit < 10)); then
        echo "[$((SECONDS - START)) s] $name skipped: the budget is spent" | tee -a "$LOG" >&2
        FAILED=$((FAILED + 1))
        return 1
    fi
    echo "[$((SECONDS - START)) s] $name (limit $limit s): $*" | tee -a "$LOG" >&2
    timeout "$limit" "$@" 2>>"$LOG"
    local rc=$?
    echo "[$((SECONDS - START)) s] $name exit $rc" | tee -a "$LOG" >&2
    ((rc == 0)) || FAILED=$((FAILED + 1))
    return "$rc"
}

main "$@"
exit $?
