"""concurrency-lab: auto-graded exercises in Python concurrency.

The package is in layers, each a folder; a module imports only from its own layer and
the layers below it (tests/test_layers.py checks it):

    manifest, commandline  the topics (topics.toml) and the command-line conventions
    core/      what every layer stands on: threads and processes found and stopped, where a
               thread waits, the machine lock, the CPUs this process may use
    kit/       the vocabulary graders and public tests are written in (`conclab.testing`)
    engine/    what runs inside a grading pytest run: the plugin, time budgets, forced thread
               switches, clean-up, the check of the graders' tools, the results file
    grading/   the parent side: child runs, `conclab grade`, `conclab grade-all`, the reports
    student/   `conclab list`, `check`, `hint`, `watch`, `reset` and what they print
    ship/      the course for a class and for platforms: release, Classroom workflow,
               Gradescope, Classroom 50, nbgrader (templates in ship/templates/)
    dev/       the maintainers' tools: `conclab dev check`, `bench`, `bench-grading`, `new`
    cli        the `conclab` command: every layer's commands in one parser
"""

__version__ = "0.1.0"
