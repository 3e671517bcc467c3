"""TFMA's confusion-matrix plots read back and drawn: the binary ROC curve and confusion matrix as
inline SVG (`tfxp report`, the Kubeflow run page) and the multiclass matrix's counts."""

from __future__ import annotations


def binary_matrices(plots: dict | None) -> list[dict]:
    """TFMA's binary confusion matrices at thresholds; none for a task without (a regression
    evaluation's plots are None)."""
    for by_sub_key in (plots or {}).values():
        for plot in (by_sub_key or {}).values():
            if "confusionMatrixAtThresholds" in plot:
                return plot["confusionMatrixAtThresholds"].get("matrices", [])
    return []


def roc_svg(matrices: list[dict], size: int = 240) -> str:
    """The ROC curve of TFMA's confusion matrices at thresholds, with its diagonal."""
    points = []
    for m in matrices:
        tp, fp = m.get("truePositives", 0.0), m.get("falsePositives", 0.0)
        tn, fn = m.get("trueNegatives", 0.0), m.get("falseNegatives", 0.0)
        if tp + fn and fp + tn:
            points.append((fp / (fp + tn), tp / (tp + fn)))
    points = sorted(set(points + [(0.0, 0.0), (1.0, 1.0)]))
    pad, inner = 30, size - 40
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{pad + x * inner:.1f},{10 + (1 - y) * inner:.1f}" for i, (x, y) in enumerate(points)
    )
    return (
        f'<svg class="roc" width="{size}" height="{size}" role="img" aria-label="ROC curve">'
        f'<rect x="{pad}" y="10" width="{inner}" height="{inner}" fill="none" stroke="#98a2b3"/>'
        f'<line x1="{pad}" y1="{10 + inner}" x2="{pad + inner}" y2="10" stroke="#d0d5dd" stroke-dasharray="4"/>'
        f'<path d="{path}" fill="none" stroke="#e15759" stroke-width="2"/>'
        f'<text x="{pad + inner / 2}" y="{size - 4}" font-size="11" text-anchor="middle">false positive rate</text>'
        f'<text x="10" y="{10 + inner / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 10 {10 + inner / 2})">true positive rate</text></svg>'
    )


def confusion_svg(matrices: list[dict], threshold: float = 0.5) -> str:
    """The confusion matrix at the threshold nearest `threshold`, as a 2x2 grid."""
    if not matrices:
        return ""
    m = min(matrices, key=lambda m: abs(m.get("threshold", 0.0) - threshold))
    cells = [
        ("true negatives", m.get("trueNegatives", 0.0)),
        ("false positives", m.get("falsePositives", 0.0)),
        ("false negatives", m.get("falseNegatives", 0.0)),
        ("true positives", m.get("truePositives", 0.0)),
    ]
    top = max(c for _, c in cells) or 1.0
    parts = []
    for i, (label, count) in enumerate(cells):
        x, y = 70 + (i % 2) * 90, 20 + (i // 2) * 70
        shade = int(235 - 150 * count / top)
        parts.append(
            f'<rect x="{x}" y="{y}" width="88" height="68" fill="rgb({shade},{shade + 10},255)"/>'
            f'<text x="{x + 44}" y="{y + 32}" font-size="15" text-anchor="middle">{count:g}</text>'
            f'<text x="{x + 44}" y="{y + 52}" font-size="10" text-anchor="middle">{label}</text>'
        )
    return (
        f'<svg class="confusion" width="300" height="190" role="img" aria-label="confusion matrix">'
        f'<text x="160" y="14" font-size="11" text-anchor="middle">predicted 0 | predicted 1 '
        f"(threshold {m.get('threshold', 0.0):.2f})</text>"
        f'<text x="34" y="58" font-size="11" text-anchor="middle">label 0</text>'
        f'<text x="34" y="128" font-size="11" text-anchor="middle">label 1</text>{"".join(parts)}</svg>'
    )
