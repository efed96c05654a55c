"""Two-way sync of a local folder with a remote one.

The pieces, each testable on its own:
- `model`: what the three trees (base, local, remote) and the planned actions are;
- `planner`: a pure function from (base, local, remote) to actions;
- `journal`: the SQLite state per sync root (base, cursor, hash cache, in-flight transfers);
- `scanner`: the local tree, hashing only what changed;
- `executor`: carries out actions against the server and the disk, updating the base;
- `engine`: passes until both sides agree, `--once` or `--watch`.
"""
