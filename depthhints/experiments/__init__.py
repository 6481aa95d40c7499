"""Experiments made of training sweeps: the paper's KITTI table (:mod:`.reproduce`) and the
controlled hint ablation (:mod:`.ablation`), both run by :func:`.runner.run_experiment`. The
paper's rows ship beside them as training configs (``configs/<row>_{hints,nohints}.yaml``).
"""

from pathlib import Path

CONFIGS = Path(__file__).resolve().parent / "configs"
"""The bundled training configs: the paper's rows, and the demo and smoke recipes."""
