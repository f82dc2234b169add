"""Count the words of the input files this partition owns (stdlib only).

Owned files: those listed in $PARALLELS_PARTITION_MANIFEST (a JSON list of paths relative to
$PARALLELS_INPUTS_DIR), or, without a manifest, every file under $PARALLELS_INPUTS_DIR.
For each owned file <input>/<name> it writes counts-<input>-<name>.json to
$PARALLELS_OUTPUTS_DIR: {"source": "<input>/<name>", "words": <total>, "counts": {word: n}}.
One output per input file, named after it, so the result does not depend on how files were
grouped into partitions, and a re-run overwrites instead of adding.
"""
import argparse
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path, PurePosixPath

# Lower-cased runs of letters, keeping inner apostrophes ("miller's" is one word).
WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def owned_files(inputs: Path) -> list:
    manifest = os.environ.get("PARALLELS_PARTITION_MANIFEST")
    if not manifest:
        return sorted(p.relative_to(inputs).as_posix() for p in inputs.rglob("*") if p.is_file())
    rel = json.loads(Path(manifest).read_text(encoding="utf-8"))
    if not isinstance(rel, list) or not all(isinstance(r, str) for r in rel):
        raise SystemExit(f"count: manifest {manifest} must be a JSON list of relative paths")
    for r in rel:
        p = PurePosixPath(r)
        if p.is_absolute() or ".." in p.parts:
            raise SystemExit(f"count: manifest path must be relative to the inputs folder: {r!r}")
    return rel


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-length", type=int, default=1, help="ignore words shorter than this")
    args = ap.parse_args()

    inputs = Path(os.environ.get("PARALLELS_INPUTS_DIR", "inputs"))
    out = Path(os.environ.get("PARALLELS_OUTPUTS_DIR", "outputs"))
    out.mkdir(parents=True, exist_ok=True)
    index = os.environ.get("PARALLELS_PARTITION_INDEX", "0")
    count = os.environ.get("PARALLELS_PARTITION_COUNT", "1")

    files = owned_files(inputs)
    total = 0
    for rel in files:
        text = (inputs / rel).read_text(encoding="utf-8").lower()
        counts = Counter(w for w in WORD.findall(text) if len(w) >= args.min_length)
        words = sum(counts.values())
        total += words
        name = "counts-" + rel.replace("/", "-").rsplit(".", 1)[0] + ".json"
        doc = {"source": rel, "words": words, "counts": dict(sorted(counts.items()))}
        (out / name).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"count: partition {index}/{count}: {len(files)} file(s), {total} words")
    return 0


if __name__ == "__main__":
    sys.exit(main())
