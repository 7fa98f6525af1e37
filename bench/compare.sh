#!/usr/bin/env bash
# Side-by-side speed of netrun and the PyTorch peer (../shared/bench), alternating
# the two ROUNDS times per case so machine noise hits both; prints medians,
# netrun/peer ratios (< 1 means netrun is faster) and the larger peak RSS of
# each side over the rounds, with the load average before and after.
# Usage: bench/compare.sh [ROUNDS] [THREADS] [CASE-FILTER]   (peer: ../shared/bench/setup-peer.sh)
# A case whose name ends in `tN` runs on N threads whatever THREADS says;
# CASE-FILTER (a grep -E pattern) picks cases by name.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
threads=${2:-2}
filter=${3:-.}
shared=../shared
peer_py=${PEER_PYTHON:-$HOME/.cache/netrun-peer/bin/python}
[ -x "$peer_py" ] || { echo "no peer python at $peer_py: run $shared/bench/setup-peer.sh" >&2; exit 1; }
cargo build --release -q
netrun=target/release/netrun
sf=$shared/configs/sphereface
deploy="$sf/sphereface_deploy.prototxt --phase TEST --forward-only --input-shape data=3,112,96"
# name | peer arguments | netrun time arguments
cases=(
  "SphereFace-20 train b32|--net sphereface --mode train --batch 32 --max-steps 5|$sf/sphereface_model.prototxt --batch 32 --iterations 3 --input-shape data=3,112,96"
  "SphereFace-20 train b1|--net sphereface --mode train --batch 1|$sf/sphereface_model.prototxt --batch 1 --iterations 10 --input-shape data=3,112,96"
  "SphereFace-20 deploy b1|--net sphereface --mode infer --batch 1|$deploy --batch 1 --iterations 20"
  "SphereFace-20 deploy b32 t1|--net sphereface --mode infer --batch 32 --max-steps 5|$deploy --batch 32 --iterations 3"
  "SphereFace-20 deploy b32 t2|--net sphereface --mode infer --batch 32 --max-steps 5|$deploy --batch 32 --iterations 3"
  "LeNet++ CenterLoss train b64|--net lenetpp --mode train --batch 64|$shared/configs/caffe-face/mnist_example/mnist_train_test.prototxt --batch 64 --iterations 10 --input-shape data=1,28,28"
)
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
maximum() { sort -g | tail -1; }
load() { cut -d' ' -f1 /proc/loadavg; }
printf "%-30s %3s %12s %12s %8s %10s %10s %11s\n" case thr "netrun ms" "peer ms" ratio "netrun MiB" "peer MiB" load
for c in "${cases[@]}"; do
  IFS='|' read -r name peer_args netrun_args <<<"$c"
  echo "$name" | grep -Eq -- "$filter" || continue
  t=$threads
  [[ $name =~ \ t([0-9]+)$ ]] && t=${BASH_REMATCH[1]}
  ours=(); theirs=(); our_rss=(); their_rss=()
  before=$(load)
  for _ in $(seq "$rounds"); do
    # shellcheck disable=SC2086
    out=$($netrun time $netrun_args --threads "$t" 2>&1)
    ours+=("$(sed -n 's/^Average Forward-Backward: \([0-9.]*\) ms./\1/p' <<<"$out")")
    our_rss+=("$(sed -n 's/^Peak RSS: \([0-9.]*\) MiB/\1/p' <<<"$out")")
    # shellcheck disable=SC2086
    out=$("$peer_py" $shared/bench/bench_torch.py one $peer_args --threads "$t" 2>&1)
    theirs+=("$(sed -n 's/.*"ms_median": \([0-9.]*\).*/\1/p' <<<"$out")")
    their_rss+=("$(sed -n 's/.*"peak_rss_mib": \([0-9.]*\).*/\1/p' <<<"$out")")
  done
  o=$(printf "%s\n" "${ours[@]}" | median)
  p=$(printf "%s\n" "${theirs[@]}" | median)
  printf "%-30s %3s %12.1f %12.1f %8.2f %10.0f %10.0f %11s\n" "$name" "$t" "$o" "$p" \
    "$(awk -v o="$o" -v p="$p" 'BEGIN {print o / p}')" \
    "$(printf "%s\n" "${our_rss[@]}" | maximum)" "$(printf "%s\n" "${their_rss[@]}" | maximum)" \
    "$before→$(load)"
done
