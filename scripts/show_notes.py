"""Print a few notes of a generated dataset folder.

python scripts/show_notes.py outputs/ru-notes --n 3
"""

from __future__ import annotations

import argparse
from pathlib import Path

from datasets import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a folder written by 'medsyn generate'")
    parser.add_argument("--n", type=int, default=3, help="how many notes to show")
    args = parser.parse_args()
    if not any(Path(args.folder, "data").glob("*.parquet")):
        # datasets cannot load an empty split, so a folder without kept notes has only its other configs
        print(
            f"0 kept notes in {args.folder}; no note passed the filter, see why with "
            f"load_dataset({args.folder!r}, 'rejected')"
        )
        return
    ds = load_dataset(args.folder, split="train")
    print(
        f"{len(ds)} kept notes in {args.folder}; mean symptom coverage {sum(ds['symptom_coverage']) / max(len(ds), 1):.2f}"
    )
    for row in ds.select(range(min(args.n, len(ds)))):
        print(f"\n[{row['id']}] {row['icd10_code']} {row['icd10_name']} | {row['sex']}, {row['age']}")
        print(f"  symptoms: {', '.join(row['symptoms'])} (coverage {row['symptom_coverage']:.2f})")
        print("  " + row["note"].replace("\n", "\n  "))


if __name__ == "__main__":
    main()
