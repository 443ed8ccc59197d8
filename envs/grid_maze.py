"""GridMaze: find the way out of a small maze; the lab's own Gymnasium environment (`lab/GridMaze-v0`).

    import gymnasium, envs.registration  # registers the lab's ids
    env = gymnasium.make("lab/GridMaze-v0", render_mode="rgb_array")

The maze is a grid of strings: `S` start, `G` goal, `#` wall, `.` floor (pass your own as `layout=`).
Actions: 0 up, 1 right, 2 down, 3 left; a move into a wall or off the grid leaves the agent where it is.
With probability `slip` the move goes in a random direction instead (0: deterministic, the default).
Reward: +1 on reaching the goal (the episode ends), -0.01 for every other step; Gymnasium's time limit
truncates an episode after 100 steps. The default maze's shortest path takes 16 steps: the best return
is 1 - 15 * 0.01 = 0.85, and an agent that never finds the goal gets -1.
Observation: the agent's cell one-hot (a flat float32 vector, rows * cols long), what an MLP Q-network
learns from directly: a tabular problem in network form, small enough to watch the values spread back
from the goal. Rendering: `rgb_array` (32-pixel cells) or `ansi` (text).

Gymnasium and NumPy only: importing this module never imports TensorFlow.
"""
from __future__ import annotations

from typing import ClassVar

import gymnasium
import numpy as np
from gymnasium import spaces

DEFAULT_LAYOUT = (
    "S.#....",
    ".##.##.",
    "...#...",
    "##.#.##",
    "...#...",
    ".####.#",
    "......G",
)
MOVES = np.array([(-1, 0), (0, 1), (1, 0), (0, -1)])  # up, right, down, left as (row, col) offsets
GOAL_REWARD, STEP_REWARD = 1.0, -0.01
COLORS = {"wall": (40, 40, 60), "floor": (235, 235, 225), "goal": (60, 180, 90), "start": (200, 215, 240),
          "agent": (220, 60, 50)}


class GridMaze(gymnasium.Env):
    metadata: ClassVar[dict] = {"render_modes": ["rgb_array", "ansi"], "render_fps": 8}

    def __init__(self, layout: tuple[str, ...] | list[str] = DEFAULT_LAYOUT, slip: float = 0.0,
                 render_mode: str | None = None, cell_pixels: int = 32):
        grid = np.array([list(row) for row in layout])
        if grid.ndim != 2 or (grid == "S").sum() != 1 or (grid == "G").sum() != 1:
            raise ValueError("layout must be rectangular strings with exactly one 'S' and one 'G'")
        if not set(np.unique(grid)) <= set("SG#."):
            raise ValueError("layout may only hold 'S', 'G', '#' and '.'")
        if not 0.0 <= slip <= 1.0:
            raise ValueError(f"slip must be in [0, 1], got {slip}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.walls = grid == "#"
        self.start = tuple(int(i) for i in np.argwhere(grid == "S")[0])
        self.goal = tuple(int(i) for i in np.argwhere(grid == "G")[0])
        self.slip, self.render_mode, self.cell_pixels = slip, render_mode, cell_pixels
        self.observation_space = spaces.Box(0.0, 1.0, (grid.size,), np.float32)
        self.action_space = spaces.Discrete(4)
        self.position = self.start

    def _observation(self) -> np.ndarray:
        observation = np.zeros(self.walls.size, np.float32)
        observation[self.position[0] * self.walls.shape[1] + self.position[1]] = 1.0
        return observation

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.position = self.start
        return self._observation(), {"position": self.position}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r}: expected 0 (up), 1 (right), 2 (down) or 3 (left)")
        if self.slip and self.np_random.random() < self.slip:
            action = int(self.np_random.integers(4))
        row, col = np.add(self.position, MOVES[int(action)])
        rows, cols = self.walls.shape
        if 0 <= row < rows and 0 <= col < cols and not self.walls[row, col]:
            self.position = (int(row), int(col))
        terminated = self.position == self.goal
        reward = GOAL_REWARD if terminated else STEP_REWARD
        return self._observation(), reward, terminated, False, {"position": self.position}

    def render(self):
        if self.render_mode == "ansi":
            rows = [["#" if wall else "." for wall in row] for row in self.walls]
            rows[self.goal[0]][self.goal[1]] = "G"
            rows[self.position[0]][self.position[1]] = "A"
            return "\n".join("".join(row) for row in rows) + "\n"
        if self.render_mode == "rgb_array":
            image = np.empty(self.walls.shape + (3,), np.uint8)
            image[:] = COLORS["floor"]
            image[self.walls] = COLORS["wall"]
            image[self.start] = COLORS["start"]
            image[self.goal] = COLORS["goal"]
            image[self.position] = COLORS["agent"]
            image = image.repeat(self.cell_pixels, axis=0).repeat(self.cell_pixels, axis=1)
            image[::self.cell_pixels, :] = 0  # grid lines
            image[:, ::self.cell_pixels] = 0
            return image
        return None


def shortest_path_length(layout=DEFAULT_LAYOUT) -> int:
    """Steps of the shortest path from S to G (breadth-first search); tests and the preset's reference."""
    grid = np.array([list(row) for row in layout])
    start, goal = tuple(np.argwhere(grid == "S")[0]), tuple(np.argwhere(grid == "G")[0])
    frontier, seen, steps = [start], {start}, 0
    while frontier:
        if goal in frontier:
            return steps
        following = []
        for cell in frontier:
            for move in MOVES:
                row, col = cell[0] + move[0], cell[1] + move[1]
                if 0 <= row < grid.shape[0] and 0 <= col < grid.shape[1] and grid[row, col] != "#" \
                        and (row, col) not in seen:
                    seen.add((row, col))
                    following.append((row, col))
        frontier, steps = following, steps + 1
    raise ValueError("the goal cannot be reached from the start")
