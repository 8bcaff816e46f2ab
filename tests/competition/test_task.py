"""A task's fixed cost: the seconds its process spent before evaluating anything."""

from __future__ import annotations

import subprocess
import sys

from competition.task import process_age


def test_process_age_counts_from_the_start_of_the_process():
    code = "import time; time.sleep(0.6); from competition.task import process_age; print(process_age())"
    age = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert 0.6 <= age < 60  # the sleep and the imports, not the machine's uptime
    assert process_age() >= 0  # this test process, alive for longer
