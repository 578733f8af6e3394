"""The vocabulary graders and public tests are written in.  Graders import it from one
place, `conclab.testing`; `state` is what the engine (the pytest plugin) shares with it."""
