"""Replay of stacked-frame observations that stores each observation's newest frame only.

An Atari observation is the last k frames stacked on the channel axis (84x84xk uint8, oldest first):
consecutive observations of one env share k-1 frames, so a replay of whole observations holds every
frame k times. This one keeps one frame per transition (7 KB instead of 28 KB at k=4) in TF-Agents'
own `TFUniformReplayBuffer` and rebuilds the stacks when it samples: it reads k-1 more consecutive
steps and stacks frames t-k+1..t for each step t. Frames from before an episode's first step are
replaced by that first frame, as the env's frame stack does at a reset (Gymnasium's
`FrameStackObservation`, padding "reset"). The rebuilt observations equal the env's (tests/agents/test_atari.py).

    replay = NewestFrameReplay(agent.collect_data_spec, batch_size=num_envs, max_length=n, frames=4)
    driver observers: [replay.add_batch, ...]
    experience, _ = replay.get_next(sample_batch_size=64, num_steps=2)   # observations (64, 2, 84, 84, 4)
"""
from __future__ import annotations


class NewestFrameReplay:
    """A `TFUniformReplayBuffer` of newest frames (`.buffer`, what a checkpoint saves) with stacked samples."""

    def __init__(self, data_spec, batch_size: int, max_length: int, frames: int):
        from tf_agents.replay_buffers import tf_uniform_replay_buffer
        from tf_agents.specs import tensor_spec

        spec = data_spec.observation
        if len(spec.shape) != 3 or spec.shape[-1] != frames:
            raise ValueError(f"frame_stack {frames} needs observations of shape (height, width, {frames}), "
                             f"got {tuple(spec.shape)}")
        frame = tensor_spec.BoundedTensorSpec(tuple(spec.shape[:-1]) + (1,), spec.dtype, spec.minimum,
                                              spec.maximum, name=spec.name)
        self.frames = frames
        self.buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
            data_spec=data_spec._replace(observation=frame), batch_size=batch_size, max_length=max_length)

    def add_batch(self, trajectory):
        """Store a batch of steps (one per env), each observation's newest frame only."""
        return self.buffer.add_batch(trajectory._replace(observation=trajectory.observation[..., -1:]))

    def get_next(self, sample_batch_size: int, num_steps: int):
        """`num_steps` consecutive steps of `sample_batch_size` random windows, observations stacked."""
        items, info = self.buffer.get_next(sample_batch_size=sample_batch_size,
                                           num_steps=num_steps + self.frames - 1)
        return restack(items, num_steps, self.frames), info


def restack(items, num_steps: int, frames: int):
    """Trajectories of `num_steps + frames - 1` steps with single frames -> the last `num_steps` steps with
    their observations' `frames` frames stacked (oldest first), padded at episode starts with the first frame."""
    import tensorflow as tf
    from tf_agents.trajectories import StepType

    singles = items.observation[..., 0]  # (batch, steps, height, width)
    starts = tf.equal(items.step_type, StepType.FIRST)  # (batch, steps)
    offsets = tf.range(frames)
    observations = []
    for t in range(num_steps):
        # the last episode start inside the window t..t+frames-1 (0 if none); earlier frames are replaced by it
        last_start = tf.reduce_max(tf.where(starts[:, t:t + frames], offsets[None, :], 0), axis=1)
        sources = t + tf.maximum(offsets[None, :], last_start[:, None])  # (batch, frames)
        stack = tf.gather(singles, sources, batch_dims=1)  # (batch, frames, height, width)
        observations.append(tf.transpose(stack, [0, 2, 3, 1]))
    rest = tf.nest.map_structure(lambda x: x[:, frames - 1:], items)
    return rest._replace(observation=tf.stack(observations, axis=1))
