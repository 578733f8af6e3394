"""The course for a class and for other platforms: the student template (release), the
Classroom workflow (workflow), Gradescope and Classroom 50 autograders (export), nbgrader
notebooks (nbexport, and notebook, which the notebooks call).  What these write is filled
in from the files in templates/."""
