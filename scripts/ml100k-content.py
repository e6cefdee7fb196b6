#!/usr/bin/env python3
"""Content features on MovieLens-100K (docs/features.md): writes, into OUT,
  items.txt  each item's genre vector (19 components, multi-hot) — the hashid feature's content;
  users.txt  each training user's mean genre vector over the items they rated in train.tsv
             (every rating, not only clicks: a profile built from clicks leaks the label);
  model.toml configs/ml100k.toml plus item_hash (hashid on items.txt) and user_item_sim
             (cosine of users.txt and items.txt, 64 buckets), each in its GwPFM group.
Usage: scripts/ml100k-content.py DATA OUT, then wgrec train --config OUT/model.toml --data DATA.
"""
import collections
import csv
import pathlib
import sys

data, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
rows = {}
for split in ["train", "valid", "test"]:
    with open(data / f"{split}.tsv") as f:
        rows[split] = list(csv.DictReader(f, delimiter="\t"))
genres_of = {}
for split in rows:
    for r in rows[split]:
        genres_of[r["item_id"]] = [g for g in r["genres"].split("|") if g]
names = sorted({g for gs in genres_of.values() for g in gs})
at = {g: i for i, g in enumerate(names)}


def line(key, v):
    return key + "\t" + " ".join("%g" % x for x in v) + "\n"


with open(out / "items.txt", "w") as f:
    for item, gs in genres_of.items():
        if gs:
            f.write(line(item, [1.0 if g in gs else 0.0 for g in names]))
sums = collections.defaultdict(lambda: [0.0] * len(names))
counts = collections.Counter()
for r in rows["train"]:
    for g in genres_of[r["item_id"]]:
        sums[r["user_id"]][at[g]] += 1.0
    counts[r["user_id"]] += 1
with open(out / "users.txt", "w") as f:
    for user, s in sums.items():
        f.write(line(user, [x / counts[user] for x in s]))

config = (pathlib.Path(__file__).parent.parent / "configs" / "ml100k.toml").read_text()
config = config.replace('"zip", "age"]', '"zip", "age", "user_item_sim"]')
config = config.replace('"history"]', '"history", "item_hash"]')
extra = """[[feature]]
name = "item_hash"
kind = "hashid"
column = "item_id"
embeddings = "items.txt"
bits = 16
radices = [2, 4, 16]
seed = 7

[[feature]]
name = "user_item_sim"
kind = "similarity"
user = "user_id"
item = "item_id"
user_embeddings = "users.txt"
item_embeddings = "items.txt"
buckets = 64

[[task]]"""
(out / "model.toml").write_text(config.replace("[[task]]", extra, 1))
print(f"{len(genres_of)} items, {len(sums)} users, {len(names)} genres → {out}")
