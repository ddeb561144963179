#!/usr/bin/env bash
# Reproduce the canonical studies: every sweep (and, where it saves its networks, the certificate
# of every end point), then its summary, figures and report, into results/<name>/. Training takes
# at most 15 minutes on 2 cores; certifying the six studies that save their networks adds more, the
# escape tests of digits_spread's 64 unsolved wide end points most (about 40 minutes with JOBS=2,
# estimated from single end points; see docs/studies.md).
#
#   scripts/reproduce.sh [--fresh] [NAME ...]     (default: all eight studies)
#
# A rerun resumes: runs already stored are not trained again (their numbers would not change: a
# run depends only on its configuration and seed). --fresh retrains everything.
set -euo pipefail
cd "$(dirname "$0")/.."
NNLAB=${NNLAB:-.venv/bin/nnlab}
JOBS=${JOBS:-2}
FRESH=()
if [[ "${1:-}" == "--fresh" ]]; then FRESH=(--fresh); shift; fi
STUDIES=("$@")
if [[ ${#STUDIES[@]} -eq 0 ]]; then
  STUDIES=(xor_capacity teacher_student digits_spread digits_spread_ce depth_width chain_gradients
           optimizers_xor optimizers_teacher)
fi
start=$SECONDS
for name in "${STUDIES[@]}"; do
  t=$SECONDS
  "$NNLAB" run "experiments/$name.toml" --jobs "$JOBS" --quiet "${FRESH[@]}"
  # Studies that save their networks get every end point certified (nnlab landscape).
  if grep -q '^save_networks = true' "experiments/$name.toml"; then
    "$NNLAB" landscape "results/$name" --jobs "$JOBS" --quiet "${FRESH[@]}"
  fi
  "$NNLAB" summary "results/$name" --format markdown --wide > "results/$name/summary.md"
  "$NNLAB" summary "results/$name" --format csv > "results/$name/summary.csv"
  "$NNLAB" report "results/$name" --figure-format png --figure-format svg
  echo "$name: $((SECONDS - t)) s"
done
echo "all: $((SECONDS - start)) s"
