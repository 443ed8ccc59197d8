"""Where experiments run: the Ray connection, the local and warm Ray instances, Ray jobs, signals, storage."""
