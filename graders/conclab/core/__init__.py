"""What every layer stands on: threads and processes found and stopped (cleanup), where a
thread waits (diagnose), the machine lock of the timing tests (machine), files written whole
(files) and the CPUs this process may use (cpus).  Nothing here knows about topics, pytest or grading."""
