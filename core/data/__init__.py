"""Stage 1, data: audio I/O and signal operations, speech and non-speech sources, the embedded
default dataset, datasets and manifests, importers, splits, the leakage audit and its
fingerprints, annotations and condition sets. Imports nothing above the shared modules."""
