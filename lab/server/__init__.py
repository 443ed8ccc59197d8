"""The lab server: a warm driver, so that a run after the first starts in about a second.

    client   `lab` itself: hands `run`, `resume`, `rerun` and `baselines` to the server (starting it on first
             use, replacing one of other code), forwards Ctrl-C / SIGTERM / SIGHUP, exits with the run's code
    daemon   the server (`python -m lab.server`): Ray Tune, the registry and the workloads imported once; each
             request runs in a process forked from it, on the client's own terminal; exits when idle

One server per user and LAB_HOME; its files (socket, cookie, record) are in lab/infra/server_files.py.
`--no-server` or LAB_NO_SERVER=1 runs a command in its own process, as before.
"""
