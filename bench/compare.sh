#!/usr/bin/env bash
# Side-by-side speed of netrun and the PyTorch peer (../shared/bench), alternating
# the two ROUNDS times per case so machine noise hits both; prints medians and
# netrun/peer ratios (< 1 means netrun is faster).
# Usage: bench/compare.sh [ROUNDS] [THREADS]      (peer: ../shared/bench/setup-peer.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
threads=${2:-2}
shared=../shared
peer_py=${PEER_PYTHON:-$HOME/.cache/netrun-peer/bin/python}
[ -x "$peer_py" ] || { echo "no peer python at $peer_py: run $shared/bench/setup-peer.sh" >&2; exit 1; }
cargo build --release -q
netrun=target/release/netrun
sf=$shared/configs/sphereface
# name | peer arguments | netrun time arguments
cases=(
  "SphereFace-20 train b32|--net sphereface --mode train --batch 32 --max-steps 5|$sf/sphereface_model.prototxt --batch 32 --iterations 3 --input-shape data=3,112,96"
  "SphereFace-20 train b1|--net sphereface --mode train --batch 1|$sf/sphereface_model.prototxt --batch 1 --iterations 10 --input-shape data=3,112,96"
  "SphereFace-20 deploy b1|--net sphereface --mode infer --batch 1|$sf/sphereface_deploy.prototxt --batch 1 --iterations 20 --input-shape data=3,112,96"
  "LeNet++ CenterLoss train b64|--net lenetpp --mode train --batch 64|$shared/configs/caffe-face/mnist_example/mnist_train_test.prototxt --batch 64 --iterations 10 --input-shape data=1,28,28"
)
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
printf "%-30s %12s %12s %8s\n" case "netrun ms" "peer ms" ratio
for c in "${cases[@]}"; do
  IFS='|' read -r name peer_args netrun_args <<<"$c"
  ours=(); theirs=()
  for _ in $(seq "$rounds"); do
    # shellcheck disable=SC2086
    ours+=("$($netrun time $netrun_args --threads "$threads" 2>&1 |
      sed -n 's/^Average Forward-Backward: \([0-9.]*\) ms./\1/p')")
    # shellcheck disable=SC2086
    theirs+=("$("$peer_py" $shared/bench/bench_torch.py one $peer_args --threads "$threads" 2>&1 |
      sed -n 's/.*"ms_median": \([0-9.]*\).*/\1/p')")
  done
  o=$(printf "%s\n" "${ours[@]}" | median)
  t=$(printf "%s\n" "${theirs[@]}" | median)
  printf "%-30s %12.1f %12.1f %8.2f\n" "$name" "$o" "$t" "$(awk -v o="$o" -v t="$t" 'BEGIN {print o / t}')"
done
