"""PPO over action chunks for flow-matching VLAs, with noise-injected Euler steps (Flow-SDE and Flow-Noise).

One RL step is one action chunk. The rollout stores the whole denoising chain, so the update recomputes exactly
the log-probabilities of the stored stochastic transitions (see ../shared/DESIGN.md, "RL: PPO over chunks").

Modules: `noise` (transition means/stds, Gaussian log-probs), `value` (value head), `agent` (model + heads: sample a
chain, re-evaluate it), `vec_env` (in-process and worker-process env batches), `buffer` (storage + GAE), `rollout`,
`ppo` (the update), `config`, `trainer` (iterations, logs, checkpoints, resume), `gym_env` (gymnasium wrapper for
baselines).
"""
