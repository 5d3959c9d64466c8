"""The moments-of-truth model as plain Python: no Faust, no Kafka, no I/O.

The stream agents and the offline tools call the same functions, so their answers
cannot disagree.
"""
