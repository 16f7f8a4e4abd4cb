"""The configuration of one PPO run (`vla-bench rl`). Derived fields are resolved in `__post_init__`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from vla_bench.envs.registry import get_suite, wants_worker_processes


@dataclass
class RLConfig:
    suite: str  # one suite (its tasks share an embodiment), e.g. libero_object or toy_reach
    init: str  # checkpoint directory of the starting policy (an SFT checkpoint)
    out: str  # run directory: policy/ (checkpoint + rl_state.pt, loadable by `vla-bench eval`), metrics, config
    tasks: list[int] = field(default_factory=lambda: [0])  # task indices within the suite
    noise: str = "flow_sde"  # "flow_sde" | "flow_noise" (the rollout's noise injection); "ode" is for evaluation
    total_env_steps: int = 50_000  # budget: stop once this many actions have been executed
    max_iterations: int | None = None  # optional cap on iterations (before the budget is reached)
    envs_per_task: int = 4  # env slots per task; E = len(tasks) * envs_per_task
    rollout_steps: int = 16  # chunk steps per env per iteration (T)
    replan_steps: int = 5  # actions of a chunk executed before the next observation
    num_denoise_steps: int | None = None  # Euler steps N; default: the checkpoint's
    sde_a: float = 0.5  # flow_sde noise level a in sigma = a * sqrt(t / (1 - t))
    noise_min: float = 0.05  # flow_noise: lower bound of the learned std
    noise_max: float = 0.3  # flow_noise: upper bound of the learned std
    gamma: float = 0.99  # discount per chunk step
    gae_lambda: float = 0.95  # GAE lambda
    update_epochs: int = 4  # passes over the rollout per iteration
    minibatch_size: int = 32  # chunk steps per gradient step
    clip_coef: float = 0.2  # PPO ratio clip (also the value clip)
    clip_vloss: bool = True  # clipped value loss
    norm_adv: str = "minibatch"  # advantage normalization: "minibatch" | "task" (per task over the batch) | "none"
    vf_coef: float = 0.5  # value loss weight
    ent_coef: float = 0.0  # entropy bonus weight (flow_noise only: flow_sde has a fixed std)
    target_kl: float | None = 0.05  # stop the epochs of an iteration once approx-KL exceeds this
    max_grad_norm: float = 1.0  # gradient clipping by global norm
    lr_actor: float = 1e-5  # learning rate of the policy (and the noise head)
    lr_critic: float = 1e-3  # learning rate of the value head
    critic_warmup_iterations: int = 0  # first iterations train the critic only (actor lr 0)
    expert_only: bool = False  # train the action expert only (the backbone stays frozen)
    value_trunk_grad: bool = False  # let the value loss reach the shared prefix features
    workers: bool | None = None  # env slots in worker processes; default: the suite's worker mode
    backend: str = "local"  # "ray": env slots as Ray actors (a local cluster, or `ray_address`)
    ray_address: str | None = None
    image_size: int | None = None  # the policy's image size (see EvalConfig); None: the suite's cameras
    env_options: dict = field(default_factory=dict)  # the suite's own env options (e.g. asset_dir)
    seed: int = 0  # init-state order, chain noise and minibatch order derive from it
    threads: int | None = None  # torch CPU threads; default: torch's
    device: str = "cpu"
    tensorboard: bool = True  # also write TensorBoard events (if the package is importable); CSV always
    progress: bool = True  # progress bar over iterations
    extra: dict = field(default_factory=dict)  # free-form notes (a pipeline's stage label and name) for the lineage

    def __post_init__(self):
        if self.noise not in ("flow_sde", "flow_noise"):
            raise ValueError(f"--noise must be flow_sde or flow_noise for training, got {self.noise!r}")
        if self.noise == "flow_sde" and self.sde_a <= 0:
            raise ValueError("flow_sde needs sde_a > 0 (a = 0 is the ODE: nothing to learn from)")
        if not self.tasks:
            raise ValueError("at least one task is needed")
        if min(self.envs_per_task, self.rollout_steps, self.replan_steps, self.minibatch_size,
               self.update_epochs) < 1:
            raise ValueError("envs_per_task, rollout_steps, replan_steps, minibatch_size, update_epochs must be >= 1")
        if self.norm_adv not in ("minibatch", "task", "none"):
            raise ValueError(f"norm_adv must be minibatch, task or none, got {self.norm_adv!r}")
        get_suite(self.suite).check_env_options(self.env_options)
        if self.backend not in ("local", "ray"):
            raise ValueError(f"backend must be local or ray, got {self.backend!r}")
        if self.workers is None:
            self.workers = wants_worker_processes(self.suite)

    def env_kwargs(self) -> dict:
        """Keyword arguments of every env slot."""
        return {**self.env_options, **({} if self.image_size is None else {"image_size": self.image_size})}

    @property
    def num_envs(self) -> int:
        return len(self.tasks) * self.envs_per_task

    def to_dict(self) -> dict:
        return asdict(self)

    # Fields that may differ when a run is resumed (the rest must match the saved config).
    RESUMABLE = ("total_env_steps", "max_iterations", "progress", "threads", "tensorboard", "workers", "backend",
                 "ray_address", "extra")

    def resume_mismatch(self, saved: dict) -> list[str]:
        now = self.to_dict()
        return [f"{k}: saved {saved.get(k)!r}, now {v!r}" for k, v in now.items()
                if k not in self.RESUMABLE and saved.get(k) != v]
