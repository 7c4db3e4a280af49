#!/usr/bin/env bash
# Set up (first run only) and run the test suite against SQLite, the local
# MariaDB and PostgreSQL, Milvus Lite and a Milvus server it starts itself.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/pytest "$@"
