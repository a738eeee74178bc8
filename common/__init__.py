"""What every package of the project shares: atomic file writes, the cgroup reader, Dice."""
