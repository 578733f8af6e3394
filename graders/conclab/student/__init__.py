"""The student commands, `conclab list`, `check`, `hint`, `watch` and `reset` (commands):
the student's work and the progress kept of it (work), what they print (screens), and
the watcher (watch)."""
