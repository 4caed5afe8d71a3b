"""A tiny decision tree (CART, Gini impurity) for the iris data set, standard library only.

Fitted once when the demo image is built (``python3 model.py iris.csv model.json``) and
loaded by ``server.py``. On the 150 iris rows a depth-3 tree classifies about 97 % of them
correctly; each leaf keeps its class counts, so a prediction comes with probabilities.
"""

from __future__ import annotations

import csv
import itertools
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
MAX_DEPTH = 3
MIN_SPLIT = 4

Node = dict[str, Any]


def load_csv(path: Path) -> tuple[list[list[float]], list[str]]:
    """Rows of features and their labels; lines starting with ``#`` are comments."""
    with path.open(encoding="utf-8") as stream:
        lines = [line for line in stream if line.strip() and not line.startswith("#")]
    reader = csv.DictReader(lines)
    rows, labels = [], []
    for record in reader:
        rows.append([float(record[name]) for name in FEATURES])
        labels.append(record["species"])
    return rows, labels


def _gini(labels: list[str]) -> float:
    total = len(labels)
    return 1.0 - sum((count / total) ** 2 for count in Counter(labels).values())


def _leaf(labels: list[str]) -> Node:
    counts = Counter(labels)
    return {"leaf": counts.most_common(1)[0][0], "counts": dict(sorted(counts.items()))}


def fit(rows: list[list[float]], labels: list[str], depth: int = 0) -> Node:
    """Grow a tree by the split with the lowest weighted Gini impurity, to ``MAX_DEPTH``."""
    if depth >= MAX_DEPTH or len(labels) < MIN_SPLIT or len(set(labels)) == 1:
        return _leaf(labels)
    best: tuple[float, int, float] | None = None
    for feature in range(len(FEATURES)):
        values = sorted({row[feature] for row in rows})
        for low, high in itertools.pairwise(values):
            threshold = (low + high) / 2
            left = [
                label for row, label in zip(rows, labels, strict=True) if row[feature] <= threshold
            ]
            right = [
                label for row, label in zip(rows, labels, strict=True) if row[feature] > threshold
            ]
            score = (len(left) * _gini(left) + len(right) * _gini(right)) / len(labels)
            if best is None or score < best[0]:
                best = (score, feature, threshold)
    if best is None or best[0] >= _gini(labels):
        return _leaf(labels)
    _, feature, threshold = best
    pairs = list(zip(rows, labels, strict=True))
    left_pairs = [(r, y) for r, y in pairs if r[feature] <= threshold]
    right_pairs = [(r, y) for r, y in pairs if r[feature] > threshold]
    return {
        "feature": feature,
        "name": FEATURES[feature],
        "threshold": round(threshold, 4),
        "left": fit([r for r, _ in left_pairs], [y for _, y in left_pairs], depth + 1),
        "right": fit([r for r, _ in right_pairs], [y for _, y in right_pairs], depth + 1),
    }


def predict(tree: Node, features: list[float]) -> tuple[str, dict[str, float]]:
    """The class of one row of four features, and the class probabilities of its leaf."""
    node = tree
    while "leaf" not in node:
        node = node["left"] if features[node["feature"]] <= node["threshold"] else node["right"]
    total = sum(node["counts"].values())
    return node["leaf"], {name: round(n / total, 4) for name, n in node["counts"].items()}


def accuracy(tree: Node, rows: list[list[float]], labels: list[str]) -> float:
    hits = sum(predict(tree, row)[0] == label for row, label in zip(rows, labels, strict=True))
    return hits / len(labels)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: model.py DATA.csv MODEL.json", file=sys.stderr)
        return 2
    rows, labels = load_csv(Path(argv[1]))
    tree = fit(rows, labels)
    score = accuracy(tree, rows, labels)
    model = {
        "name": "iris-decision-tree",
        "features": list(FEATURES),
        "classes": sorted(set(labels)),
        "trainingRows": len(rows),
        "trainingAccuracy": round(score, 4),
        "tree": tree,
    }
    Path(argv[2]).write_text(json.dumps(model, indent=1) + "\n", encoding="utf-8")
    print(f"fitted {model['name']} on {len(rows)} rows: training accuracy {score:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
