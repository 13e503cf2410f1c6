#!/usr/bin/env bash
# Check an UrbanSound8K copy (https://urbansounddataset.weebly.com/urbansound8k.html, unpacked to $1).
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 US8K_ROOT  (holds audio/foldN/ and metadata/UrbanSound8K.csv)" >&2
  exit 1
fi
python -m sepaudio.classify prepare urbansound8k "$1"
