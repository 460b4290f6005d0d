#!/usr/bin/env bash
# Create bench/.venv-devinterp (Python 3.11) with torch 2.13.0 (CPU build) and devinterp, for
# bench/devinterp_compare.py. Pin torch exactly: any other version pulls multi-GB CUDA wheels.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-devinterp"
py=""
for cand in python3.11 "$( (pyenv root 2>/dev/null || echo /nonexistent) )/versions/3.11.7/bin/python"; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then
        py="$cand"; break
    fi
done
if [ -z "$py" ]; then
    echo "setup_devinterp.sh: no Python 3.11 found (tried python3.11 and \$(pyenv root)/versions/3.11.7/bin/python)" >&2
    exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install "torch==2.13.0" devinterp
"$venv/bin/python" -c 'import torch, devinterp, importlib.metadata as m; print("torch", torch.__version__, "devinterp", m.version("devinterp"))'
