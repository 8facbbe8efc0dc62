#!/usr/bin/env bash
# One `medsyn generate` job split over a Slurm job array: one array task per shard, all writing one folder.
#
#   export MEDSYN_FLEET=fleet.txt             # the engines: one "URL [max_in_flight]" per line (see README.md)
#   sbatch --array=0-7 recipes/cluster/slurm-array.sh
#
# Each task runs the shard that SLURM_ARRAY_TASK_ID names (--shard auto) and resumes it if it ran before, so a
# failed or pre-empted task is rerun alone (`sbatch --array=3 …`). The last shard to finish writes the dataset
# files. If some shard never finishes, write what is done with the finalize step, which names the missing shards:
#
#   sbatch --dependency=afterany:$ARRAY_JOB_ID recipes/cluster/slurm-array.sh finalize
#
# Settings come from the environment: MEDSYN_FLEET (required), MEDSYN_CONFIG (the recipe, by default the served
# one), MEDSYN_OUT (a folder on storage every node sees), MEDSYN_N (notes for the whole job), MEDSYN_WAIT (seconds to
# wait for the first engine to answer) and MEDSYN_ARGS (more flags, e.g. "--max_concurrency 64").
#SBATCH --job-name=medsyn-generate
#SBATCH --cpus-per-task=2
#SBATCH --mem=8G
#SBATCH --time=12:00:00
#SBATCH --output=medsyn-%A_%a.log
#SBATCH --signal=B:TERM@120
set -euo pipefail

: "${MEDSYN_FLEET:?set MEDSYN_FLEET to a fleet file: one URL [max_in_flight] per line}"
MEDSYN_CONFIG=${MEDSYN_CONFIG:-recipes/gemma-270m/generate-served.yaml}
MEDSYN_OUT=${MEDSYN_OUT:-outputs/ru-notes-fleet}
MEDSYN_N=${MEDSYN_N:-41000}
MEDSYN_WAIT=${MEDSYN_WAIT:-900}
MEDSYN=${MEDSYN:-medsyn}
read -r -a extra <<< "${MEDSYN_ARGS:-}"
job=(generate --config "$MEDSYN_CONFIG" --endpoint "$MEDSYN_FLEET" --n "$MEDSYN_N" --out "$MEDSYN_OUT" "${extra[@]}")

wait_for_fleet() {
    # Engines load their model for minutes after the scheduler starts them: wait until one answers /v1/models,
    # as `medsyn serve` waits for its own server. The router then takes the others as they come up.
    local deadline=$((SECONDS + MEDSYN_WAIT)) url
    while ((SECONDS < deadline)); do
        while read -r url _; do
            [[ -z "$url" || "$url" == \#* ]] && continue
            if curl -fsS -m 5 -o /dev/null "${url%/}/v1/models"; then
                echo "engine ${url} answers"
                return 0
            fi
        done < "$MEDSYN_FLEET"
        sleep 5
    done
    echo "no engine in $MEDSYN_FLEET answered within ${MEDSYN_WAIT} s; check that they started" >&2
    return 1
}

if [[ "${1:-}" == "finalize" ]]; then
    # writes the dataset from every shard's notes; warns about the tasks no shard has finished
    exec "$MEDSYN" "${job[@]}" --finalize_only
fi
: "${SLURM_ARRAY_TASK_ID:?run this script as a job array: sbatch --array=0-7 $0}"
wait_for_fleet
# `exec`, so that Slurm's SIGTERM at the time limit reaches medsyn: it stops, saves what is done, and exits 143
exec "$MEDSYN" "${job[@]}" --shard auto
