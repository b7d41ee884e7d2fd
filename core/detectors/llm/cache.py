"""The decoder's key/value cache, under both of transformers' names for it.

transformers renamed `past_key_values` to `cache` in 5.x (the old name is deprecated there);
these helpers pick the name the loaded model's signature takes.
"""

from __future__ import annotations


def decode(lm, cache=None, **kw):
    """Run the language model `lm` on top of `cache` (None: from scratch); returns its output."""
    import inspect

    if cache is not None:
        name = "cache" if "cache" in inspect.signature(lm.forward).parameters else "past_key_values"
        kw[name] = cache
    return lm(**kw)


def output_cache(out):
    """The key/value cache of a decoder output, under either generation's attribute name."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def cut(cache, length: int) -> None:
    """Cut the cache back to its first `length` positions (a negative crop: the form both 4.x and 5.x take)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)
