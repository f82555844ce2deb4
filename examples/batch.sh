#!/usr/bin/env bash
# Render every example scene, then run the same command again: the second run redoes nothing (every output's
# key matches) and only reads metadata. Extra arguments go to both runs, e.g. `examples/batch.sh --devices cpu:2`.
#   OUT=outputs/examples STEPS=4 MODEL=tiny examples/batch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/examples}
STEPS=${STEPS:-4}      # the tiny model's images are noise anyway; the real model wants the scenes' own 28
MODEL=${MODEL:-tiny}   # contextgen for the real weights (then drop STEPS to use each scene's steps)
MANIFEST="$OUT/manifest.jsonl"
CTXGEN=${CTXGEN:-ctxgen}

render() {
  $CTXGEN render "examples/*.yaml" --model "$MODEL" --steps "$STEPS" --out "$OUT" --manifest "$MANIFEST" "$@" >/dev/null
}

echo "== first run: renders every example into $OUT"
render "$@"
before=$(wc -l < "$MANIFEST")
echo "== second run: the same command"
render "$@"
python3 - "$MANIFEST" "$before" <<'PY'
import json, sys
records = [json.loads(line) for line in open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):]]
statuses = [r["status"] for r in records]
print(f"second run: {statuses.count('skipped')} skipped, {statuses.count('ok')} rendered, {statuses.count('failed')} failed")
sys.exit(0 if statuses and set(statuses) == {"skipped"} else 1)
PY
