"""Training: the model of a run (``model``), one pure-torch step (``step``), checkpoints and data.

Import the submodules directly (``from depthhints.train.model import build_model``); this package
file imports nothing so that light users (checkpoint I/O) do not load the training stack.
"""
