#!/usr/bin/env bash
# Set up (first run only) and serve voiceprint on the embedded defaults:
# SQLite + Milvus Lite + audio under ./data, http://localhost:8000/docs
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/voiceprint serve "$@"
