#!/usr/bin/env bash
# Split MUSAN (https://www.openslr.org/17/, unpacked to $1) 65/10/25 per class and remove silence -> $2/*.csv
set -euo pipefail
if [ $# -ne 2 ] || [ ! -d "$1/speech" ]; then
  echo "usage: $0 MUSAN_ROOT OUT  (MUSAN_ROOT holds music/, speech/, noise/; download: openslr.org/17)" >&2
  exit 1
fi
python -m sepaudio.classify prepare musan "$1" "$2"
