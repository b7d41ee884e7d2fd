"""A map of clips: every clip of a predictions table as a point in 2-D, so error clusters can be
found by eye and then by ear, and judged by numbers (error inside a region vs outside it).

The embedding is one the lab already has: an audio LLM's audio embeddings (the encoder and
projector that feed the decoder, `Family.encode`), averaged over the clip's audio tokens — the
lab base model's by default, so the map works offline. Reduced to 2-D by scikit-learn: PCA (exact,
instant) or t-SNE (local neighbourhoods, seconds to a minute on 2 cores for thousands of clips).
Maps are saved per table (results/maps/<table>-<embedding>-<method>.parquet, with the table's
fingerprint), so a page draws a cached map at once and a changed table is mapped again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from core import atomic
from core.errors import LabError

# torch (through the detector), scikit-learn, scipy and pyarrow are imported inside functions: importing
# this module stays cheap

METHODS = ("pca", "tsne")


def maps_dir() -> Path:
    from core.paths import results_root

    return results_root() / "maps"


def audio_embeddings(detector, clips: list[np.ndarray], batch_size: int = 32,
                     progress: Callable[[float, str], None] | None = None,
                     should_stop: Callable[[], bool] | None = None) -> np.ndarray:  # fmt: skip
    """(clips, dim) mean audio embeddings from a detector that exposes them (the audio LLMs)."""
    if not hasattr(detector, "audio_embeddings"):
        raise LabError(f"{getattr(detector, 'name', detector)!r} has no audio encoder the map can read")

    def report(done: int) -> None:
        if should_stop and should_stop():
            raise KeyboardInterrupt
        if progress:
            progress(done / max(1, len(clips)), f"embedded {done}/{len(clips)} clips")

    return detector.audio_embeddings(clips, batch_size, report)


def reduce(embeddings: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(n, 2) coordinates: PCA of the standardised embeddings, or t-SNE on their first 50 PCs."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    if method not in METHODS:
        raise LabError(f"map method must be one of {METHODS}, not {method!r}")
    x = np.asarray(embeddings, float)
    if len(x) < 3:
        raise LabError(f"a map needs at least 3 clips, got {len(x)}")
    if not np.isfinite(x).all():
        raise LabError("the embeddings have non-finite values")
    z = StandardScaler().fit_transform(x)
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(z)
    from sklearn.manifold import TSNE

    pcs = PCA(n_components=min(50, z.shape[1], len(z) - 1), random_state=seed).fit_transform(z)
    perplexity = float(min(30.0, max(2.0, (len(z) - 1) / 4)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(pcs)


def fingerprint(table: pd.DataFrame) -> str:
    """The table's clips and scores, hashed: a map is reused only for the table it was made from."""
    key = pd.util.hash_pandas_object(table[["clip_id", "p_speech"]], index=False).to_numpy()
    return hashlib.sha256(key.tobytes()).hexdigest()[:16]


def map_path(table_name: str, embedding: str, method: str) -> Path:
    from core.names import check_name

    safe = embedding.replace(":", "_").replace("/", "_")
    return maps_dir() / f"{check_name(table_name, 'table')}-{safe}-{method}.parquet"


def build_map(table_name: str, detector, embedding: str, method: str = "pca", batch_size: int = 32,
              progress: Callable[[float, str], None] | None = None,
              should_stop: Callable[[], bool] | None = None) -> Path:  # fmt: skip
    """Embed every clip of a predictions table with `detector` (named `embedding` in the map's file:
    a detector name, or run:<id> for a fine-tuned run), reduce it to 2-D and save it."""
    from core.data.datasets import load_dataset
    from core.scoring import predictions

    table, meta = predictions.load(predictions.resolve(table_name))
    ds = load_dataset(str(meta.get("dataset", "")))
    say = progress or (lambda f, m: None)
    clips = []
    for i, cid in enumerate(table["clip_id"]):
        clips.append(ds.load_clip(cid).samples)
        if i % 200 == 0:
            say(0.2 * i / len(table), f"read {i}/{len(table)} clips")
    emb = audio_embeddings(detector, clips, batch_size, lambda f, m: say(0.2 + 0.7 * f, m), should_stop)
    say(0.92, f"reducing {emb.shape[1]} dimensions to 2 ({method})")
    xy = reduce(emb, method)
    out = pd.DataFrame({"clip_id": table["clip_id"].to_numpy(), "x": xy[:, 0], "y": xy[:, 1]})
    info = {"table": table_name, "embedding": embedding, "method": method, "dims": int(emb.shape[1]),
            "fingerprint": fingerprint(table), "clips": len(out)}  # fmt: skip
    path = map_path(table_name, embedding, method)

    def write(tmp: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        t = pa.Table.from_pandas(out, preserve_index=False)
        pq.write_table(t.replace_schema_metadata({**(t.schema.metadata or {}), b"lab": json.dumps(info).encode()}),
                       tmp)  # fmt: skip

    atomic.write_with(path, write, suffix=".parquet")
    say(1.0, f"map of {len(out)} clips")
    return path


def load_map(table_name: str, table: pd.DataFrame, embedding: str = "lab-base", method: str = "pca"):
    """(coordinates, info) of a saved map that still matches `table`, else (None, None)."""
    import pyarrow.parquet as pq

    path = map_path(table_name, embedding, method)
    if not path.exists():
        return None, None
    t = pq.read_table(path)
    info = json.loads((t.schema.metadata or {}).get(b"lab", b"{}"))
    if info.get("fingerprint") != fingerprint(table):
        return None, info  # made from an older version of the table
    return t.to_pandas(), info


def region_stats(table: pd.DataFrame, inside: np.ndarray) -> dict:
    """Error rate inside a selected region vs outside it, with Wilson intervals and Fisher's exact
    test: is the region really worse, or is it the luck of a few clips?"""
    from scipy.stats import fisher_exact

    from core.analysis.stats import wilson
    from core.decision import correct

    inside = np.asarray(inside, bool)
    wrong = ~np.asarray(correct(table["label"], table["logit"]), bool)
    k_in, n_in = int(wrong[inside].sum()), int(inside.sum())
    k_out, n_out = int(wrong[~inside].sum()), int((~inside).sum())
    if n_in == 0 or n_out == 0:
        raise LabError("select some clips, but not all of them")
    _, p = fisher_exact([[k_in, n_in - k_in], [k_out, n_out - k_out]])
    return {"n_inside": n_in, "error_inside": k_in / n_in, "ci_inside": wilson(k_in, n_in),
            "n_outside": n_out, "error_outside": k_out / n_out, "ci_outside": wilson(k_out, n_out),
            "p_value": float(p), "groups_inside": int(table.loc[inside, "group_id"].nunique())}  # fmt: skip
