"""Merge per-file word counts into one counts.json (stdlib only).

Reads every counts-*.json below $PARALLELS_INPUTS_DIR (any depth, so it does not matter how the
runtime lays out the upstream partitions) and writes to $PARALLELS_OUTPUTS_DIR:
- counts.json: {word: count} for the whole corpus, most frequent first (ties by word);
- summary.json: {"words", "distinct", "sources", "top": [[word, count], ...]}.
A source counted twice is an error: every input file must be counted exactly once.
"""
import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", type=int, default=20, help="how many of the most frequent words go in summary.json")
    args = ap.parse_args()

    inputs = Path(os.environ.get("PARALLELS_INPUTS_DIR", "inputs"))
    out = Path(os.environ.get("PARALLELS_OUTPUTS_DIR", "outputs"))
    files = sorted(p for p in inputs.rglob("counts-*.json") if p.is_file())
    if not files:
        print(f"merge: no counts-*.json below {inputs}", file=sys.stderr)
        return 2

    total = Counter()
    sources = {}
    for f in files:
        doc = json.loads(f.read_text(encoding="utf-8"))
        source = doc["source"]
        if source in sources:
            print(f"merge: {source} was counted twice ({sources[source]} and {f})", file=sys.stderr)
            return 3
        sources[source] = f
        total.update(doc["counts"])

    ranked = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))
    out.mkdir(parents=True, exist_ok=True)
    (out / "counts.json").write_text(json.dumps(dict(ranked), indent=1) + "\n", encoding="utf-8")
    summary = {
        "words": sum(total.values()),
        "distinct": len(total),
        "sources": sorted(sources),
        "top": [[w, n] for w, n in ranked[: args.top]],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(f"merge: {len(files)} count file(s), {summary['words']} words, {summary['distinct']} distinct")
    return 0


if __name__ == "__main__":
    sys.exit(main())
