"""Fault drills: each script causes a fault for real (a database stopped, a process killed, a
hostile file) and prints whether the service survived it; the benchmarks are in bench/."""
