"""Running untrusted team code: staging, bubblewrap, cgroup limits, verdicts."""
