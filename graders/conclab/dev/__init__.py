"""The maintainers' tools: `conclab dev check` (check), `bench`, `bench-grading` and
`new` (a topic's files scaffolded).  Nothing outside dev/ imports it."""
