"""The parent side of grading: child pytest runs (runner), `conclab grade` (grade) and
`conclab grade-all` (gradeall), their scores and report formats."""
