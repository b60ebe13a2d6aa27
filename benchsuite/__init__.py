"""`reshoot bench`: a fixed, versioned set of reshoot tasks with baselines, and one table of results.

suite.py    what a suite is made of: pinned takes (generator seeds, footage, budgets) and tasks on them
takes.py    preparing a take once (footage → registered, reconstructed, laid-out workspace) and its shots
methods.py  what makes a shot's frames: the built-in baselines and researchers' plug-ins
scoring.py  a method's frames against the truth: pixels by region and `reshoot check`'s reasoning scores
runner.py   the jobs of a suite, run serially or on Ray, into `bench/results.json` and a Markdown table
compare.py  two results files, method by method, with a paired bootstrap over takes
"""

from reshoot.bench.suite import BENCH_VERSION, SUITES, Suite, TakeSpec, TaskSpec

__all__ = ["BENCH_VERSION", "SUITES", "Suite", "TakeSpec", "TaskSpec"]
