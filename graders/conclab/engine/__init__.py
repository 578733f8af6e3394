"""What runs inside a grading pytest run: the plugin (`-p conclab.engine.plugin`) and the
pieces its hooks call: loading the topic's module, time budgets, forced thread switches,
clean-up after each test and at the end, the check of the graders' tools, and the results
file that the parent side reads."""
