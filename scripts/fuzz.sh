#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build (make fuzz) for FUZZ_SECONDS each and prints, per
# target, the executions and the coverage libFuzzer reports (cov: edges, ft: features).
#   scripts/fuzz.sh BUILD_DIR SECONDS [TARGET...]     FUZZ_JOBS=N runs N targets at a time
# Each target's growing corpus lives in BUILD_DIR/corpus/<target> (seeded from fuzz/corpus/),
# its log in BUILD_DIR/fuzz-<target>.log; a finding is saved there as crash-*/leak-*/timeout-*
# and the script exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: fuzz.sh BUILD_DIR SECONDS [TARGET...]}
seconds=${2:?usage: fuzz.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in fuzz/*.c; do targets+=("$(basename "$f" .c)"); done
fi

run_one() {
    local t=$1 build=$2 seconds=$3
    mkdir -p "$build/corpus/$t" "$build/findings/$t"
    # -timeout: an input that takes 10 s is a finding; -rss_limit_mb: so is one that needs 2 GiB.
    if "$build/fuzz_$t" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
        -rss_limit_mb=2048 -artifact_prefix="$build/findings/$t/" \
        "$build/corpus/$t" "fuzz/corpus/$t" >"$build/fuzz-$t.log" 2>&1; then
        echo ok >"$build/fuzz-$t.status"
    else
        echo "FINDING (exit $?)" >"$build/fuzz-$t.status"
    fi
}
export -f run_one
printf '%s\n' "${targets[@]}" | xargs -P "${FUZZ_JOBS:-1}" -I{} bash -c 'run_one "$@"' _ {} "$build" "$seconds"

status=0
printf '%-16s %8s %14s %8s %8s %8s  %s\n' target seconds executions "exec/s" cov ft result
for t in "${targets[@]}"; do
    log="$build/fuzz-$t.log"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    result=$(cat "$build/fuzz-$t.status")
    [ "$result" = ok ] || status=1
    rate=$(( ${execs:-0} / seconds ))
    printf '%-16s %8s %14s %8s %8s %8s  %s\n' "$t" "$seconds" "${execs:-?}" "$rate" "${cov:-?}" "${ft:-?}" "$result"
done
exit $status
