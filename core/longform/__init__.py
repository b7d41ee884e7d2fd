"""Speech over time in long recordings (#33): reference segments, curves turned into segments,
and the field's detection error.

segments.py     reference and hypothesis segments as arrays; RTTM and CSV read (checked, errors
                name file and line) and written; union of speaker turns into speech regions
postprocess.py  a frame curve → segments: hysteresis (onset/offset), padding, minimum silence and
                speech durations, the order pyannote.audio's Binarize applies them
metrics.py      detection error rate (miss + false alarm over reference speech), precision, recall
                and F1 of speech time, with a collar and optional skipping of overlap, computed
                exactly on interval boundaries and equal to pyannote.metrics (tested)
assemble.py     long recordings with an exact reference, laid out from a clip dataset's split parts
tuning.py       the post-processing rule chosen on dev recordings for an objective (error rate, F1,
                miss at a false-alarm budget), then applied to test unchanged
"""
