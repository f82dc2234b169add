"""Split a text corpus into N parts of whole lines (stdlib only).

Reads every file of the corpus (a file or a folder, default $PARALLELS_INPUTS_DIR/corpus), in
path order, and writes part-000.txt ... part-<N-1>.txt to $PARALLELS_OUTPUTS_DIR: contiguous runs
of lines whose sizes differ by at most one line. Every line lands in exactly one part.
"""
import argparse
import os
import sys
from pathlib import Path


def corpus_files(corpus: Path) -> list:
    if corpus.is_file():
        return [corpus]
    return sorted((p for p in corpus.rglob("*") if p.is_file()), key=lambda p: p.relative_to(corpus).as_posix())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", type=int, default=4, help="number of parts (>= 1)")
    ap.add_argument("--corpus", default="", help="corpus file or folder (default: $PARALLELS_INPUTS_DIR/corpus)")
    args = ap.parse_args()
    if args.parts < 1:
        print(f"split: --parts must be at least 1, got {args.parts}", file=sys.stderr)
        return 2

    corpus = Path(args.corpus) if args.corpus else Path(os.environ.get("PARALLELS_INPUTS_DIR", "inputs")) / "corpus"
    if not corpus.exists():
        print(f"split: no corpus at {corpus} (set PARALLELS_INPUTS_DIR or pass --corpus)", file=sys.stderr)
        return 2
    lines = []
    files = corpus_files(corpus)
    for f in files:
        text = f.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            text += "\n"
        lines.extend(text.splitlines(keepends=True))

    out = Path(os.environ.get("PARALLELS_OUTPUTS_DIR", "outputs"))
    out.mkdir(parents=True, exist_ok=True)
    base, extra = divmod(len(lines), args.parts)
    start = 0
    for i in range(args.parts):
        size = base + (1 if i < extra else 0)
        (out / f"part-{i:03d}.txt").write_text("".join(lines[start : start + size]), encoding="utf-8")
        start += size
    print(f"split: {len(lines)} lines from {len(files)} file(s) into {args.parts} parts in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
