"""Running experiments: the Tune runner, the trainable adapter, its callbacks, search spaces and Tune fixes."""
