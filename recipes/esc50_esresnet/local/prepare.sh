#!/usr/bin/env bash
# Check an ESC-50 copy (git clone https://github.com/karolpiczak/ESC-50 or its zip, unpacked to $1).
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 ESC50_ROOT  (holds audio/ and meta/esc50.csv)" >&2
  exit 1
fi
python -m sepaudio.classify prepare esc50 "$1"
