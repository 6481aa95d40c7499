"""The published KITTI results: the numbers our experiments and dashboards compare with.

Sources (docs/method.md#paper-results): the Depth Hints README table (verified; RMSE and RMSE log
of the two rows the paper reports them for), a re-evaluation of the released HR weights without
post-processing and on the improved ground truth (docs/method.md#released-models, secondary), and
the Monodepth2 baselines without hints (docs/method.md#baselines-without-hints). The Monodepth2
numbers are taken as not post-processed (its paper's main table is not; its README does not
say). The paper's ablations could not be retrieved and are left out.

Every value is in the metric names of :data:`depthhints.evaluate.METRICS`; each result carries the
comparison params of our evaluation runs, so the two can be matched by params.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

DH_README = "Depth Hints README (verified)"
DH_PAPER_FULL = "Depth Hints paper, RMSE/RMSE log via SMDE-Pytorch (secondary)"
DH_RELEASED = "released Depth Hints weights re-evaluated by SMDE-Pytorch (secondary)"
MD2 = "Monodepth2 README / SMDE-Pytorch; post-processing assumed off"


@dataclass(frozen=True)
class PaperResult:
    """One published result: which model and evaluation (params) and its numbers."""

    key: str  # stable identity, e.g. "depth-hints/S_R50_640x192/eigen_pp"
    name: str  # the run name in the UI
    method: str  # "Depth Hints" or "Monodepth2"
    backbone: str
    resolution: str
    pretrained: bool
    modality: str
    use_depth_hints: bool
    post_process: bool
    metrics: dict[str, float]
    provenance: str
    row: str = ""  # our recipe (a bundled row config) with these settings, if any
    eval_protocol: str = "eigen"
    extra: dict[str, str] = field(default_factory=dict)

    def params(self) -> dict[str, str]:
        """The comparison params, as our evaluation runs log them."""
        return {
            "backbone": self.backbone,
            "resolution": self.resolution,
            "pretrained": str(self.pretrained),
            "modality": self.modality,
            "use_depth_hints": str(self.use_depth_hints),
            "post_process": str(self.post_process),
            "eval_protocol": self.eval_protocol,
            "dataset": "kitti",
            "row": self.row,
            **self.extra,
        }

    def content_hash(self) -> str:
        content = {"name": self.name, "params": self.params(), "metrics": self.metrics}
        return hashlib.sha1(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]


def _dh(row: str, label: str, pretrained: bool, metrics: dict[str, float], **kw) -> PaperResult:
    modality, backbone, resolution = row.split("_")[:3]
    pp = kw.pop("post_process", True)
    protocol = kw.pop("eval_protocol", "eigen")
    suffix = f"{protocol}{'_pp' if pp else ''}"
    return PaperResult(
        key=f"depth-hints/{row}/{suffix}",
        name=f"paper · Depth Hints {label}" + ("" if suffix == "eigen_pp" else f" · {suffix}"),
        method="Depth Hints",
        backbone={"R50": "resnet50", "R18": "resnet18"}[backbone],
        resolution=resolution,
        pretrained=pretrained,
        modality=modality,
        use_depth_hints=True,
        post_process=pp,
        eval_protocol=protocol,
        metrics=metrics,
        provenance=kw.pop("provenance", DH_README),
        row=f"{row}_hints",
    )


def _md2(
    modality: str, resolution: str, pretrained: bool, metrics: dict[str, float]
) -> PaperResult:
    label = f"{modality} R18 {resolution}{'' if pretrained else ' no pt'}"
    return PaperResult(
        key=f"monodepth2/{modality}_R18_{resolution}{'' if pretrained else '_nopt'}/eigen",
        name=f"paper · Monodepth2 {label}",
        method="Monodepth2",
        backbone="resnet18",
        resolution=resolution,
        pretrained=pretrained,
        modality=modality,
        use_depth_hints=False,
        post_process=False,
        metrics=metrics,
        provenance=MD2,
    )


def _m(abs_rel, sq_rel, a1, rmse=None, rmse_log=None) -> dict[str, float]:
    values = {"abs_rel": abs_rel, "sq_rel": sq_rel, "rmse": rmse, "rmse_log": rmse_log, "a1": a1}
    return {k: v for k, v in values.items() if v is not None}


PAPER_RESULTS: tuple[PaperResult, ...] = (
    _dh("S_R50_640x192", "R50 640x192", True, _m(0.102, 0.762, 0.880, 4.602, 0.189)),
    _dh("S_R50_640x192_nopt", "R50 640x192 no pt", False, _m(0.118, 0.941, 0.850)),
    _dh("S_R50_1024x320", "HR R50 1024x320", True, _m(0.096, 0.710, 0.890, 4.393, 0.185)),
    _dh("S_R50_1024x320_nopt", "HR R50 1024x320 no pt", False, _m(0.112, 0.857, 0.861)),
    _dh("MS_R18_1024x320", "HR MS R18 1024x320", True, _m(0.098, 0.702, 0.887)),
    _dh(
        "S_R50_1024x320",
        "HR R50 1024x320 released weights",
        True,
        _m(0.097, 0.737, 0.889, 4.448, 0.186),
        post_process=False,
        provenance=DH_RELEASED,
    ),
    _dh(
        "S_R50_1024x320",
        "HR R50 1024x320 released weights",
        True,
        _m(0.069, 0.324, 0.944, 3.047, 0.108),
        eval_protocol="eigen_benchmark",
        provenance=DH_RELEASED,
    ),
    _dh(
        "S_R50_1024x320",
        "HR R50 1024x320 released weights",
        True,
        _m(0.070, 0.336, 0.943, 3.095, 0.109),
        post_process=False,
        eval_protocol="eigen_benchmark",
        provenance=DH_RELEASED,
    ),
    _md2("S", "640x192", True, _m(0.109, 0.873, 0.864, 4.960, 0.209)),
    _md2("S", "1024x320", True, _m(0.107, 0.849, 0.874, 4.764, 0.201)),
    _md2("S", "640x192", False, {"abs_rel": 0.130, "a1": 0.831}),
    _md2("MS", "640x192", True, {"abs_rel": 0.106, "a1": 0.874}),
    _md2("MS", "1024x320", True, {"abs_rel": 0.106, "a1": 0.876}),
)


def paper_table() -> dict[str, dict[str, float]]:
    """{row: metrics} of the README table (KITTI Eigen test, LiDAR GT, ×5.4, post-processed),
    rows named as our recipes without the ``_hints`` suffix (``S_R50_640x192``, ...)."""
    return {
        result.row.removesuffix("_hints"): result.metrics
        for result in PAPER_RESULTS
        if result.provenance == DH_README
    }
