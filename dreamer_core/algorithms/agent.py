"""The DreamerV3 agent: one training step (world model + behaviour), acting, checkpoints.

Batches come in as numpy ``[B, T, ...]`` arrays (see :meth:`Agent.train_step`); internally
everything is time-major ``[T, B, ...]`` so that recurrences index the first axis.
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dreamer_core.algorithms import losses
from dreamer_core.algorithms.objectives import scaled_sum, world_model_terms
from dreamer_core.algorithms.returns import ReturnNormaliser, lambda_return
from dreamer_core.config import AgentConfig
from dreamer_core.distributions import gumbel_noise
from dreamer_core.io import atomic_write
from dreamer_core.models import Actor, Critic, WorldModel
from dreamer_core.models.actor_critic import slow_update
from dreamer_core.models.policy_tick import ACTION_HIGH, ACTION_LOW, PolicyTick
from dreamer_core.precision import choose_precision

# 2: loss_scales replaced kl_dyn_scale/kl_rep_scale, and callers may store extra state (the learner's).
# 3: the world model's ensemble heads (model trust).
CHECKPOINT_FORMAT = 3
BATCH_KEYS = ("obs", "action", "reward", "is_first", "is_last", "is_terminal")


@contextlib.contextmanager
def frozen(*modules: nn.Module):
    """Build graphs in which these modules' parameters are constants (gradients still flow
    through their activations), then restore their ``requires_grad`` flags."""
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


def straight_through_clip(x: torch.Tensor, low: float = ACTION_LOW, high: float = ACTION_HIGH) -> torch.Tensor:
    """Clip values into the action box (the one the exported tick clamps to) while letting
    gradients pass unchanged."""
    return x.clamp(low, high).detach() + (x - x.detach())


class Agent(nn.Module):
    """DreamerV3 learner and policy for vector observations and continuous actions in [−1, 1]."""

    def __init__(self, obs_dim: int, act_dim: int, config: AgentConfig, device: str | torch.device = "cpu",
                 seed: int = 0):
        super().__init__()
        self.config, self.obs_dim, self.act_dim, self.seed = config, int(obs_dim), int(act_dim), int(seed)
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' was requested but torch sees no CUDA device; use device='cpu'")
        c = config
        # Parameter init draws from a private, seeded RNG so the global torch RNG is left alone.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.wm = WorldModel(obs_dim, act_dim, c)
            feat = self.wm.feat_dim
            self.actor = Actor(feat, act_dim, c.units, c.layers, c.actor_min_std, c.actor_max_std,
                               c.actor_init_zero_mean, c.actor_init_std)
            self.critic = Critic(feat, c.units, c.layers, self.wm.bins)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.return_norm = ReturnNormaliser(c.return_norm_rate, c.return_norm_low, c.return_norm_high)
        self.to(self.device)
        self.model_opt = torch.optim.Adam(self.wm.parameters(), lr=c.model_lr, eps=c.model_eps)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=c.actor_lr, eps=c.actor_eps)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=c.critic_lr, eps=c.critic_eps)
        self.generator = torch.Generator(self.device).manual_seed(self.seed)
        self.act_generator = torch.Generator(self.device).manual_seed(self.seed + 1)
        self.np_rng = np.random.default_rng(self.seed)
        self.updates = 0
        self.policy_steps = 0  # calls of policy_step (observations acted on), not replay steps
        self.precision = choose_precision(c.precision, self.device)
        # Imagination horizon of the behaviour updates: the preset's, unless the learner sets it from
        # the model's skill (docs/model_trust.md); the learner keeps it in its own state.
        self.horizon = c.horizon
        if c.compile:
            # The GRU transition runs T + H times per update; compiling it fuses its small ops.
            self.wm.rssm.step = torch.compile(self.wm.rssm.step, dynamic=False)

    # --- data --------------------------------------------------------------------------------
    def to_tensors(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """Validate a numpy batch and convert it to time-major tensors; raises ValueError naming the key."""
        missing = [k for k in BATCH_KEYS if k not in batch]
        if missing:
            raise ValueError(f"training batch is missing keys {missing}; it needs {list(BATCH_KEYS)}")
        obs = np.asarray(batch["obs"])
        if obs.ndim != 3 or obs.shape[-1] != self.obs_dim:
            raise ValueError(f"batch['obs'] has shape {obs.shape}; expected [B, T, {self.obs_dim}]")
        b, t = obs.shape[:2]
        expected = {"obs": (b, t, self.obs_dim), "action": (b, t, self.act_dim), "reward": (b, t),
                    "is_first": (b, t), "is_last": (b, t), "is_terminal": (b, t)}
        out = {}
        for key, shape in expected.items():
            value = np.asarray(batch[key])
            if value.shape != shape:
                raise ValueError(f"batch[{key!r}] has shape {value.shape}; expected {list(shape)} "
                                 f"(B={b}, T={t} from batch['obs'])")
            if key in ("obs", "action", "reward"):
                if not np.issubdtype(value.dtype, np.number):
                    raise ValueError(f"batch[{key!r}] has dtype {value.dtype}; expected float32")
                bad = ~np.isfinite(value)
                if bad.any():
                    where = tuple(int(i) for i in np.argwhere(bad)[0])
                    raise ValueError(f"batch[{key!r}] contains {int(bad.sum())} non-finite values "
                                     f"(NaN/inf; first at index {where}); the batch was refused and the "
                                     "model is unchanged. Check the replay data.")
                value = value.astype(np.float32, copy=False)
            else:
                value = value.astype(np.float32)
            out[key] = torch.from_numpy(np.ascontiguousarray(np.swapaxes(value, 0, 1))).to(self.device)
        return out

    def _autocast(self):
        return self.precision.autocast()

    # --- losses ------------------------------------------------------------------------------
    def world_model_loss(self, data: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict, dict]:
        """World-model loss on time-major tensors; returns (loss, metrics, posterior rollout)."""
        c = self.config
        shape = (*data["obs"].shape[:2], c.stoch, c.classes)
        with self._autocast():
            terms, post = world_model_terms(self.wm, data, gumbel_noise(shape, self.generator, self.device),
                                            c.free_nats)
            total = scaled_sum(terms, c.loss_scales).mean()
        metrics = {f"loss/{k}": v.mean().detach() for k, v in terms.items()}
        metrics["loss/world_model"] = total.detach()
        return total, metrics, post

    def _imagine(self, h: torch.Tensor, z: torch.Tensor, horizon: int, generator: torch.Generator) -> dict:
        def policy(h_t, z_t):
            mean, std = self.actor(self.wm.features(h_t, z_t))
            eps = torch.randn(mean.shape, generator=generator, device=mean.device)
            return straight_through_clip(mean + std * eps), {"std": std}

        traj = self.wm.rssm.imagine(h, z, policy, horizon, generator)
        traj["feat"] = self.wm.features(traj["h"], traj["z"])
        return traj

    def _score(self, traj: dict, start_cont: torch.Tensor) -> dict[str, torch.Tensor]:
        """Imagined rewards, continues, values, λ-returns and weights of a trajectory."""
        c = self.config
        feat = traj["feat"]
        # Rewards and continues of the start state are never used (it was not imagined); its reward
        # slot is a placeholder and its continue flag the real one. Continues use the mode (0/1).
        reward = torch.cat([torch.zeros_like(start_cont)[None], self.wm.predict_reward(feat[1:])])
        cont = torch.cat([start_cont[None], (self.wm.predict_continue(feat[1:]) > 0.5).float()])
        value = self.critic.value(feat)
        ret = lambda_return(self._penalised(reward, traj), value, cont, c.gamma, c.lam)
        weight = (torch.cumprod(c.gamma * cont, 0) / c.gamma).detach()
        return {"reward": reward, "cont": cont, "value": value, "return": ret, "weight": weight}

    def _penalised(self, reward: torch.Tensor, traj: dict) -> torch.Tensor:
        """Imagined rewards minus ``disagreement_penalty`` × the ensemble's reward disagreement on the
        step that led to each (the MOPO idea: pay for leaving the data); unchanged at 0."""
        scale = self.config.disagreement_penalty
        if scale == 0.0:
            return reward
        feat = traj["feat"]
        spread = self.wm.ensemble.disagreement(feat[:-1], traj["action"], reward[1:],
                                               self.wm.rssm.prior_probs(traj["h"][1:]))["reward"]
        return reward - scale * torch.cat([torch.zeros_like(spread[:1]), spread])

    def behaviour_losses(self, start: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Actor and critic losses from imagined rollouts starting at ``start`` (``h``, ``z``, ``cont``,
        flat [N, ...]). The world model is frozen for both; the critic is frozen in the actor loss
        and the critic sees detached features, so each loss reaches only its own parameters.
        Also advances the return normaliser with the new λ-returns, as DreamerV3 does before scaling."""
        c = self.config
        with self._autocast(), frozen(self.wm, self.critic):
            traj = self._imagine(start["h"].detach(), start["z"].detach(), self.horizon, self.generator)
            scored = self._score(traj, start["cont"])
        ret, value, weight = scored["return"], scored["value"], scored["weight"][:-1]
        self.return_norm.update(ret)
        actor = c.loss_scales["actor"] * (weight * losses.actor_loss(ret, value[:-1], traj["std"],
                                                                    self.return_norm.scale, c.actor_entropy)).mean()
        feat = traj["feat"][:-1].detach()
        with self._autocast():
            logits = self.critic(feat)
            with torch.no_grad():
                slow_value = self.slow_critic.value(feat)
        critic = c.loss_scales["critic"] * (
            weight * losses.critic_loss(logits, ret, slow_value, self.critic.bins, c.slow_critic_reg)).mean()
        metrics = {"loss/actor": actor.detach(), "loss/critic": critic.detach(),
                   "imag/return": ret.mean().detach(), "imag/value": value.mean().detach(),
                   "imag/reward": scored["reward"][1:].mean().detach(), "imag/action_std": traj["std"].mean().detach(),
                   "return_norm/scale": self.return_norm.scale.detach(), "return_norm/lo": self.return_norm.lo.detach()}
        return actor, critic, metrics

    # --- training ----------------------------------------------------------------------------
    @staticmethod
    def _optimise(opt: torch.optim.Optimizer, loss: torch.Tensor, clip: float, *groups) -> torch.Tensor:
        """One step; each parameter group is clipped on its own norm (so the trust ensemble's
        gradients never shrink the world model's). Returns the first group's norm."""
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norms = [nn.utils.clip_grad_norm_(list(group), clip) for group in groups]
        opt.step()
        return norms[0].detach()

    def train_step(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One world-model update on the real batch and one actor-critic update in imagination
        from every posterior state of it. Returns scalar metrics.

        Raises ValueError (naming the key) on missing keys, wrong shapes or NaN/inf, before any
        parameter, optimiser, normaliser or RNG state changes.
        """
        data = self.to_tensors(batch)
        c = self.config
        self.train()
        wm_loss, metrics, post = self.world_model_loss(data)
        metrics["grad_norm/world_model"] = self._optimise(self.model_opt, wm_loss, c.model_grad_clip,
                                                             self.wm.core_parameters(), self.wm.ensemble.parameters())
        start = {"h": post["h"].flatten(0, 1), "z": post["z"].flatten(0, 1),
                 "cont": 1.0 - data["is_terminal"].flatten(0, 1)}
        actor_loss, critic_loss, behaviour_metrics = self.behaviour_losses(start)
        metrics.update(behaviour_metrics)
        if self.updates >= c.actor_warmup_updates:
            metrics["grad_norm/actor"] = self._optimise(self.actor_opt, actor_loss, c.actor_grad_clip,
                                                        self.actor.parameters())
        metrics["grad_norm/critic"] = self._optimise(self.critic_opt, critic_loss, c.critic_grad_clip,
                                                       self.critic.parameters())
        slow_update(self.slow_critic, self.critic, c.slow_critic_fraction)
        self.updates += 1
        return {k: float(v) for k, v in metrics.items()}

    # --- acting ------------------------------------------------------------------------------
    def initial_state(self, batch_size: int = 1) -> dict[str, torch.Tensor]:
        """Episode-start carried state ``{"h": [B,D], "z": [B,S·C], "prev_action": [B,A]}``."""
        rssm = self.wm.rssm
        with torch.no_grad():
            h = rssm.initial_h(batch_size).clone()
        return {"h": h, "z": h.new_zeros(batch_size, rssm.z_dim), "prev_action": h.new_zeros(batch_size, self.act_dim)}

    def policy_tick(self) -> PolicyTick:
        """The one-tick module for ONNX export and acting, built on demand: it only re-references
        this agent's modules (sharing their parameters), so it is no submodule of the agent and
        adds nothing to checkpoints."""
        return PolicyTick(self.wm, self.actor)

    @torch.no_grad()
    def policy_step(self, obs: np.ndarray, state: dict | None, is_first: np.ndarray | bool,
                    explore: bool = True) -> tuple[np.ndarray, dict]:
        """Act on one observation ``[O]`` (or a batch ``[B, O]``); returns the action and the next state.

        ``state=None`` starts an episode. ``explore=False`` acts with the mean action.
        """
        obs_arr = np.asarray(obs, dtype=np.float32)
        single = obs_arr.ndim == 1
        obs_t = torch.from_numpy(np.atleast_2d(obs_arr)).to(self.device)
        if obs_t.shape[-1] != self.obs_dim or obs_t.ndim != 2:
            raise ValueError(f"obs has shape {obs_arr.shape}; expected [{self.obs_dim}] or [B, {self.obs_dim}]")
        if not torch.isfinite(obs_t).all():
            raise ValueError("obs contains NaN/inf; refusing to act on it")
        batch = obs_t.shape[0]
        first = torch.as_tensor(np.broadcast_to(np.asarray(is_first, dtype=np.float32), (batch,)).copy(),
                                device=self.device)
        if state is None:
            state = self.initial_state(batch)
            first = torch.ones_like(first)
        gumbel = gumbel_noise((batch, self.wm.rssm.z_dim), self.act_generator, self.device)
        eps = torch.randn((batch, self.act_dim), generator=self.act_generator, device=self.device)
        if not explore:
            eps = torch.zeros_like(eps)
        self.eval()
        action, _, h_next, z_next = self.policy_tick()(obs_t, state["h"], state["z"], state["prev_action"],
                                                       first, gumbel, eps)
        self.policy_steps += batch
        out = action.cpu().numpy()
        return (out[0] if single else out), {"h": h_next, "z": z_next, "prev_action": action}

    # --- analysis ----------------------------------------------------------------------------
    @torch.no_grad()
    def imagine_returns(self, batch: dict[str, np.ndarray], horizon: int) -> dict[str, float]:
        """Imagine ``horizon`` steps under the actor from every posterior state of a real batch.

        Returns mean λ-return, value, normalised advantage ``(R−v)/S`` and imagined reward at
        the start states. Uses a generator seeded from the agent's seed, so training RNG is untouched.
        """
        data = self.to_tensors(batch)
        gen = torch.Generator(self.device).manual_seed(self.seed + 2)
        c = self.config
        shape = (*data["obs"].shape[:2], c.stoch, c.classes)
        post = self.wm.rssm.observe(self.wm.encode(data["obs"]), data["action"], data["is_first"],
                                    gumbel_noise(shape, gen, self.device))
        traj = self._imagine(post["h"].flatten(0, 1), post["z"].flatten(0, 1), horizon, gen)
        scored = self._score(traj, 1.0 - data["is_terminal"].flatten(0, 1))
        ret, value = scored["return"][0], scored["value"][0]
        return {"return": float(ret.mean()), "value": float(value.mean()),
                "advantage": float(((ret - value) / self.return_norm.scale).mean()),
                "reward": float(scored["reward"][1:].mean())}

    # --- checkpoints -------------------------------------------------------------------------
    def save_checkpoint(self, path: str | Path, extra: dict | None = None) -> None:
        """Write everything needed to resume bit-exactly, plus the caller's ``extra`` state (plain
        Python data), atomically (see :func:`dreamer_core.io.atomic_write`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": CHECKPOINT_FORMAT,
            "obs_dim": self.obs_dim, "act_dim": self.act_dim, "seed": self.seed,
            "config": self.config.model_dump(),
            "modules": self.state_dict(),
            "optimisers": {"model": self.model_opt.state_dict(), "actor": self.actor_opt.state_dict(),
                           "critic": self.critic_opt.state_dict()},
            "rng": {"train": self.generator.get_state(), "act": self.act_generator.get_state(),
                    "numpy": self.np_rng.bit_generator.state},
            "counters": {"updates": self.updates, "policy_steps": self.policy_steps},
            "extra": extra or {},
        }
        atomic_write(path, lambda f: torch.save(payload, f))

    @classmethod
    def load_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> Agent:
        """Rebuild an agent from :meth:`save_checkpoint` output, ready to continue training exactly."""
        return cls.from_checkpoint(read_checkpoint(path, device), device)

    @classmethod
    def from_checkpoint(cls, payload: dict, device: str | torch.device = "cpu") -> Agent:
        """Rebuild an agent from a payload returned by :func:`read_checkpoint`."""
        agent = cls(payload["obs_dim"], payload["act_dim"], AgentConfig(**payload["config"]), device,
                    payload["seed"])
        agent.load_state_dict(payload["modules"])
        agent.model_opt.load_state_dict(payload["optimisers"]["model"])
        agent.actor_opt.load_state_dict(payload["optimisers"]["actor"])
        agent.critic_opt.load_state_dict(payload["optimisers"]["critic"])
        agent.generator.set_state(payload["rng"]["train"].cpu())
        agent.act_generator.set_state(payload["rng"]["act"].cpu())
        agent.np_rng.bit_generator.state = payload["rng"]["numpy"]
        agent.updates = payload["counters"]["updates"]
        agent.policy_steps = payload["counters"]["policy_steps"]
        return agent


def read_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """The payload of an agent checkpoint (dims, config, ``extra``, ...); ValueError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise ValueError(f"checkpoint {path} could not be read ({exc}); is it an Agent checkpoint?") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else None
        raise ValueError(f"checkpoint {path} has format {found!r}; this version reads format {CHECKPOINT_FORMAT} "
                         "(start a new run directory, or resume with the dreamer_core that wrote it)")
    return payload
